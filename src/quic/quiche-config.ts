// quiche's Config built from quiclb's config.quic (one per shard; quiche Configs are not shared across
// threads). The transport parameters it sets are RFC 9000 §18.2's.
import type { Config } from '../config/types.ts';
import { loadQuiche, type QuicheConfig } from './quiche.ts';
import { QuicError, toQuicError } from './errors.ts';

/** Our active_connection_id_limit (RFC 9000 §5.1.1): how many CIDs we accept from the peer. */
export const ACTIVE_CID_LIMIT = 4;
/** Unidirectional streams a client may open: control + QPACK encoder/decoder + reserved/grease types. */
const MAX_STREAMS_UNI = 16;

export function buildQuicheConfig(config: Config, certFile: string, keyFile: string): QuicheConfig {
  const q = config.quic;
  const c = new (loadQuiche().Config)();
  try {
    c.loadCertChainFromPemFile(certFile);
    c.loadPrivKeyFromPemFile(keyFile);
  } catch (err) {
    const e = toQuicError(err);
    throw new QuicError(e.code, `cannot load TLS certificate ${certFile} / key ${keyFile} for QUIC: ${e.message}`);
  }
  c.verifyPeer(false);
  c.setApplicationProtos(['h3']);
  c.setMaxIdleTimeout(q.idleTimeoutMs);
  c.setMaxRecvUdpPayloadSize(q.maxUdpPayloadSize);
  c.setMaxSendUdpPayloadSize(q.maxUdpPayloadSize);
  c.setInitialMaxData(q.initialMaxData);
  c.setInitialMaxStreamDataBidiLocal(q.initialMaxStreamData);
  c.setInitialMaxStreamDataBidiRemote(q.initialMaxStreamData);
  c.setInitialMaxStreamDataUni(q.initialMaxStreamData);
  c.setInitialMaxStreamsBidi(q.maxStreamsBidi);
  c.setInitialMaxStreamsUni(MAX_STREAMS_UNI);
  c.setActiveConnectionIdLimit(ACTIVE_CID_LIMIT);
  // RFC 9000 §18.2 disable_active_migration: NAT rebinding still works, only deliberate moves are refused.
  c.setDisableActiveMigration(!config.loadBalancer.connectionMigration);
  return c;
}
