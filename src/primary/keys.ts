// The keys the primary hands to every part that must agree across threads, restarts and instances, all
// derived from the key ring file (src/shared/key-ring.ts): Retry token keys (the router), the stateless reset
// keys (the router and the shards' quiche connections) and the session ticket keys of the shards' TLS (TCP)
// and quiche (QUIC) contexts. Read at start (created when missing) and again by every reload (never created
// then: a new key ring would end every Retry token, ticket and reset of the running one).
import type { Config } from '../config/types.ts';
import { ConfigError } from '../config/errors.ts';
import type { Logger } from '../shared/logger.ts';
import { defaultKeyRingFile, openKeyRing, readKeyRing, KeyRingError, type KeyRing } from '../shared/key-ring.ts';
import type { ShardKeys } from '../shard/messages.ts';

export interface PrimaryKeys extends ShardKeys {
  file: string;
  /** Keys in the ring (the first is current). */
  count: number;
  /** Retry token keys, newest first: tokens minted under an older key of the ring still validate. */
  retryKeys: Buffer[];
  /** Stateless reset keys, newest first: new CIDs use the first, older CIDs keep theirs (src/wire/cid.ts key tag). */
  resetKeys: Buffer[];
  /** 48 octets for node:tls `ticketKeys` (TCP): the current key's only (node:tls takes one). */
  tlsTicketKeys: Buffer;
  /** 48 octets for quiche's Config.setTicketKey (QUIC): the current key's only (BoringSSL's setter takes one). */
  quicTicketKey: Buffer;
}

function keyRingFile(config: Config): string {
  return config.tls.keyRing ?? defaultKeyRingFile(config.tls.stateDir);
}

/** KeyRingError -> ConfigError at `tls.keyRing`, so a start exits 2 and a reload is refused naming the field. */
function asConfigError(err: unknown): unknown {
  if ((err as { code?: string }).code === 'QUICLB_KEY_RING') return ConfigError.at('tls.keyRing', (err as Error).message);
  return err;
}

function derive(file: string, ring: KeyRing): PrimaryKeys {
  return {
    file,
    count: ring.keys.length,
    retryKeys: ring.deriveAll('quic retry token'),
    resetKeys: ring.deriveAll('quic stateless reset'),
    tlsTicketKeys: ring.derive('tls session tickets'),
    quicTicketKey: ring.derive('quic session tickets'),
  };
}

/** At start. Throws ConfigError at `tls.keyRing` when the file cannot be made, read or parsed, or others may read it. */
export function loadPrimaryKeys(config: Config, logger: Logger): PrimaryKeys {
  const file = keyRingFile(config);
  let opened;
  try {
    opened = openKeyRing(file);
  } catch (err) {
    throw asConfigError(err);
  }
  const { ring, created } = opened;
  if (created) logger.info({ file }, 'created a key ring (Retry tokens, stateless resets, session tickets); keep it, and share it with every quiclb that serves the same clients');
  else logger.debug({ file, keys: ring.keys.length }, 'key ring loaded');
  return derive(file, ring);
}

/**
 * At a reload: the key ring of `config` (its tls.keyRing may name another file than the running one). Throws
 * ConfigError at `tls.keyRing` when it is missing, unreadable, malformed or readable by others.
 */
export function reloadPrimaryKeys(config: Config): PrimaryKeys {
  const file = keyRingFile(config);
  try {
    const ring = readKeyRing(file);
    if (ring === undefined) {
      throw new KeyRingError(`${file} does not exist; a reload never creates a key ring (a new one would end every Retry token and session ticket): restore the file or point tls.keyRing at an existing one`);
    }
    return derive(file, ring);
  } catch (err) {
    throw asConfigError(err);
  }
}

const sameList = (a: readonly Uint8Array[], b: readonly Uint8Array[]): boolean =>
  a.length === b.length && a.every((k, i) => Buffer.compare(k, b[i]) === 0);

/** True when `a` and `b` hold the same keys (the file may differ: a copy of the ring is the same ring). */
export function sameKeys(a: PrimaryKeys, b: PrimaryKeys): boolean {
  return sameList(a.retryKeys, b.retryKeys) && sameList(a.resetKeys, b.resetKeys) && a.tlsTicketKeys.equals(b.tlsTicketKeys) && a.quicTicketKey.equals(b.quicTicketKey);
}

/** What a shard needs (no Retry keys: only the primary mints and checks Retry tokens). */
export function shardKeys(keys: PrimaryKeys): ShardKeys {
  return { resetKeys: keys.resetKeys, tlsTicketKeys: keys.tlsTicketKeys, quicTicketKey: keys.quicTicketKey };
}
