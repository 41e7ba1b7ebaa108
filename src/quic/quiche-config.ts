// quiche's Config built from quiclb's config.quic (one per shard; quiche Configs are not shared across
// threads). The transport parameters it sets are RFC 9000 §18.2's.
import type { Config } from '../config/types.ts';
import { loadQuiche, type QuicheConfig } from './quiche.ts';
import { QuicError, toQuicError } from './errors.ts';

/** Our active_connection_id_limit (RFC 9000 §5.1.1): how many CIDs we accept from the peer. */
export const ACTIVE_CID_LIMIT = 4;
/** Unidirectional streams a client may open: control + QPACK encoder/decoder + reserved/grease types. */
const MAX_STREAMS_UNI = 16;

/**
 * `ticketKey` (48 octets, from the key ring) makes a session ticket one shard issued valid on every shard and
 * after a restart; without it BoringSSL picks a random key per Config.
 */
export function buildQuicheConfig(config: Config, certFile: string, keyFile: string, ticketKey?: Uint8Array): QuicheConfig {
  const q = config.quic;
  const c = new (loadQuiche().Config)();
  try {
    c.loadCertChainFromPemFile(certFile);
    c.loadPrivKeyFromPemFile(keyFile);
  } catch (err) {
    const e = toQuicError(err);
    throw new QuicError(e.code, `cannot load TLS certificate ${certFile} / key ${keyFile} for QUIC: ${e.message}`);
  }
  if (ticketKey) {
    try {
      c.setTicketKey(ticketKey);
    } catch (err) {
      const e = toQuicError(err);
      throw new QuicError(e.code, `cannot set the QUIC session ticket key (48 octets expected, got ${ticketKey.length}): ${e.message}`);
    }
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
