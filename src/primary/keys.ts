// The keys the primary hands to every part that must agree across threads, restarts and instances, all
// derived from the key ring file (src/shared/key-ring.ts): Retry token keys (the router), the stateless reset
// key (the router and the shards' quiche connections) and the session ticket keys of the shards' TLS (TCP)
// and quiche (QUIC) contexts.
import type { Config } from '../config/types.ts';
import { ConfigError } from '../config/errors.ts';
import type { Logger } from '../shared/logger.ts';
import { defaultKeyRingFile, openKeyRing } from '../shared/key-ring.ts';

export interface PrimaryKeys {
  file: string;
  /** Retry token keys, newest first: tokens minted under an older key of the ring still validate. */
  retryKeys: Buffer[];
  resetKey: Buffer;
  /** 48 octets for node:tls `ticketKeys` (TCP). */
  tlsTicketKeys: Buffer;
  /** 48 octets for quiche's Config.setTicketKey (QUIC). */
  quicTicketKey: Buffer;
}

/** Throws ConfigError at `tls.keyRing` when the file cannot be made, read or parsed, or others may read it. */
export function loadPrimaryKeys(config: Config, logger: Logger): PrimaryKeys {
  const file = config.tls.keyRing ?? defaultKeyRingFile(config.tls.stateDir);
  let opened;
  try {
    opened = openKeyRing(file);
  } catch (err) {
    if ((err as { code?: string }).code === 'QUICLB_KEY_RING') throw ConfigError.at('tls.keyRing', (err as Error).message);
    throw err;
  }
  const { ring, created } = opened;
  if (created) logger.info({ file }, 'created a key ring (Retry tokens, stateless resets, session tickets); keep it, and share it with every quiclb that serves the same clients');
  else logger.debug({ file, keys: ring.keys.length }, 'key ring loaded');
  return {
    file,
    retryKeys: ring.deriveAll('quic retry token'),
    resetKey: ring.derive('quic stateless reset'),
    tlsTicketKeys: ring.derive('tls session tickets'),
    quicTicketKey: ring.derive('quic session tickets'),
  };
}
