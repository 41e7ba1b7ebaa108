// QUIC stateless reset (RFC 9000 §10.3). Every CID quiclb issues gets a reset token derived from the CID
// and one static key, HMAC-SHA256(key, CID) truncated to 16 octets (the construction §10.3.2 suggests), so
// whoever holds the key can answer a packet for a connection it knows nothing about: the primary for a CID
// whose shard is dead, a restarted shard for CIDs of its previous incarnation. The keys come from the key
// ring (src/shared/key-ring.ts); after a rotation an older key still answers for the CIDs issued under it.
// The client compares the last 16 octets with the token it was given for that CID and closes at once
// instead of waiting for its idle timeout. Sans-IO: the callers decide when to send (short headers only,
// size and rate rules below).
import { createHmac, randomFillSync } from 'node:crypto';
import { CID_FIRST_OCTET, CID_KEY_TAG, CID_LEN } from './cid.ts';

export const RESET_TOKEN_LEN = 16;
/**
 * RFC 9000 §10.3: a stateless reset is at least 21 octets (1 header octet, at least 4 unpredictable octets,
 * the 16-octet token) and MUST be smaller than the packet that triggered it (so two endpoints that both
 * lost state cannot loop), so packets of 21 octets or fewer get no answer.
 */
export const MIN_STATELESS_RESET = 21;
/**
 * §10.3: a reset should look like a short-header packet carrying a CID of the length we ask peers to use
 * plus at least 22 octets; quiclb's CIDs are 16 octets: 1 + 16 + 22 = 39, and 43 leaves room for the 20-octet
 * CIDs of other servers behind the same address. Longer triggers get 43 to 63 octets.
 */
export const TYPICAL_STATELESS_RESET = 43;
const MAX_EXTRA = 20;

export class ResetTokens {
  /** Newest first: the first issues, every one answers for the CIDs issued under it. */
  private readonly keys: readonly Buffer[];
  private readonly tags: readonly number[];
  /** The key tag new CIDs carry (encodeCid's `keyTag`): the newest key's. */
  readonly tag: number;

  /**
   * `keys`: one key, or the key ring's reset keys newest first. After a rotation the CIDs issued under an
   * older key still get that key's token: each CID carries its key's tag (src/wire/cid.ts, octet 2).
   */
  constructor(keys: Uint8Array | readonly Uint8Array[]) {
    const list = keys instanceof Uint8Array ? [keys] : keys;
    if (list.length === 0) throw new RangeError('stateless reset tokens need a key');
    for (const k of list) if (k.length < 16) throw new RangeError('stateless reset key must be at least 16 octets');
    this.keys = list.map((k) => Buffer.from(k));
    this.tags = this.keys.map(keyTag);
    this.tag = this.tags[0];
  }

  /** The 16-octet token of the CID `buf[offset, offset + len)`. */
  token(buf: Uint8Array, offset = 0, len = buf.length - offset): Buffer {
    return createHmac('sha256', this.keyOf(buf, offset, len)).update(buf.subarray(offset, offset + len)).digest().subarray(0, RESET_TOKEN_LEN);
  }

  /** The same token as quiche takes it (u128, the token octets big endian). */
  tokenBigInt(cid: Uint8Array): bigint {
    const t = this.token(cid);
    return (t.readBigUInt64BE(0) << 64n) | t.readBigUInt64BE(8);
  }

  /** True when `other` holds the same keys in the same order. */
  sameKeys(other: ResetTokens): boolean {
    return this.keys.length === other.keys.length && this.keys.every((k, i) => k.equals(other.keys[i]));
  }

  /**
   * The newest key whose tag the CID carries; the newest key for a CID that is not one of ours, or whose
   * key left the ring (that client then waits for its idle timeout), or when there is only one key. Two
   * keys of one ring share a tag once in 256 rotations: the older one's CIDs then get the newer one's token.
   */
  private keyOf(buf: Uint8Array, offset: number, len: number): Buffer {
    if (this.keys.length > 1 && len === CID_LEN && buf[offset] === CID_FIRST_OCTET) {
      const tag = buf[offset + CID_KEY_TAG];
      for (let i = 0; i < this.tags.length; i++) if (this.tags[i] === tag) return this.keys[i];
    }
    return this.keys[0];
  }
}

/**
 * A key's tag: one octet of HMAC-SHA256(key, "quiclb cid key tag"). Every holder of the key computes the same
 * one (other shards, a restarted quiclb); it reveals nothing of the tokens, which HMAC the 16-octet CIDs.
 */
export function keyTag(key: Uint8Array): number {
  return createHmac('sha256', key).update('quiclb cid key tag').digest()[0];
}

/**
 * Size of the reset that answers a packet of `triggerLen` octets, 0 when none may be sent: §10.3 wants it
 * smaller than the trigger and at least 21 octets; triggers of 43 octets or fewer get one octet less (the
 * RFC's advice), longer ones 43 + a random 0..20 octets (a constant size would mark every reset as one).
 */
export function statelessResetSize(triggerLen: number, random = Math.random): number {
  if (triggerLen <= MIN_STATELESS_RESET) return 0;
  if (triggerLen <= TYPICAL_STATELESS_RESET) return triggerLen - 1;
  const room = Math.min(MAX_EXTRA, triggerLen - 1 - TYPICAL_STATELESS_RESET);
  return TYPICAL_STATELESS_RESET + Math.floor(random() * (room + 1));
}

/**
 * The reset packet (RFC 9000 §17.3.1 layout so it passes for a short header): first octet 0b01xxxxxx
 * (header form 0, fixed bit 1, unpredictable bits), unpredictable octets, then the token.
 */
export function buildStatelessReset(token: Uint8Array, size: number): Buffer {
  if (token.length !== RESET_TOKEN_LEN) throw new RangeError('reset token must be 16 octets');
  if (size < MIN_STATELESS_RESET) throw new RangeError(`a stateless reset is at least ${MIN_STATELESS_RESET} octets`);
  const out = Buffer.allocUnsafe(size);
  randomFillSync(out, 0, size - RESET_TOKEN_LEN);
  out[0] = 0x40 | (out[0] & 0x3f);
  out.set(token, size - RESET_TOKEN_LEN);
  return out;
}

/**
 * A token bucket for stateless resets (RFC 9000 §10.3: an endpoint may limit them; every one costs an HMAC
 * and a datagram, and a flood of garbage short headers must not turn into a flood of answers).
 * `ratePerSecond` refills, `burst` bounds what can be saved up.
 */
export class ResetRateLimit {
  private readonly ratePerMs: number;
  private readonly burst: number;
  private tokens: number;
  private last: number;

  constructor(ratePerSecond: number, burst: number, now = performance.now()) {
    this.ratePerMs = ratePerSecond / 1000;
    this.burst = burst;
    this.tokens = burst;
    this.last = now;
  }

  /** True when one reset may go out now (and takes it). */
  take(now = performance.now()): boolean {
    const elapsed = now - this.last;
    if (elapsed > 0) {
      this.tokens = Math.min(this.burst, this.tokens + elapsed * this.ratePerMs);
      this.last = now;
    }
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }
}

/**
 * The primary sends every reset (its own and the shards') through one bucket of 1000 a second, 1000 deep:
 * about 60 KB/s of resets at most, and after a crash of a shard holding thousands of connections every
 * client still hears within seconds, as each retransmits (PTO) until it does.
 */
export const PRIMARY_RESET_RATE = 1000;
export const PRIMARY_RESET_BURST = 1000;
/** Each shard builds at most this many before the primary's limit: it bounds the HMAC work of a flood. */
export const SHARD_RESET_RATE = 1000;
export const SHARD_RESET_BURST = 1000;
