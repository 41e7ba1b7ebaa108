// Stateless Retry tokens (RFC 9000 §8.1.2, §17.2.5): minted and validated by the primary so that a
// flood of spoofed Initials costs no shard any work. The token authenticates, with an HMAC under a key
// from the key ring (src/shared/key-ring.ts: a restarted or second quiclb with the same file accepts it):
//   - the client IP address (RFC 9000 §8.1.4: tokens are bound to the address they were sent to;
//     the port is left out so a NAT rebinding between Retry and the next Initial still validates),
//   - the original DCID (needed by the shard: quiche's accept() takes it to fill the
//     original_destination_connection_id transport parameter, RFC 9000 §7.3),
//   - the Retry's source CID (the client must use it as DCID of its next Initial),
//   - the mint time, so a token expires.
//
//   0      version (1)
//   1..7   mint time, ms since the epoch, 48-bit big endian
//   7      original DCID length (<= 20)
//   8..    original DCID
//   ..+16  HMAC-SHA256 truncated to 128 bits
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

const TOKEN_VERSION = 1;
const MAC_LEN = 16;
const MAX_CID = 20;

export type TokenCheck = { ok: true; odcid: Buffer } | { ok: false; reason: 'malformed' | 'expired' | 'bad_mac' };

export class RetryTokenMinter {
  /** The first mints; every one validates (older keys of the key ring, after a rotation). */
  private readonly keys: readonly Buffer[];
  private readonly lifetimeMs: number;

  constructor(opts: { lifetimeMs?: number; keys?: readonly Buffer[] } = {}) {
    this.keys = opts.keys !== undefined && opts.keys.length > 0 ? opts.keys : [randomBytes(32)];
    this.lifetimeMs = opts.lifetimeMs ?? 10_000;
  }

  mint(address: string, odcid: Uint8Array, retryScid: Uint8Array, now = Date.now()): Buffer {
    if (odcid.length > MAX_CID) throw new RangeError('original DCID longer than 20 octets');
    const body = Buffer.allocUnsafe(8 + odcid.length + MAC_LEN);
    body[0] = TOKEN_VERSION;
    body.writeUIntBE(now, 1, 6);
    body[7] = odcid.length;
    body.set(odcid, 8);
    const macOff = 8 + odcid.length;
    this.mac(this.keys[0], body.subarray(0, macOff), address, retryScid).copy(body, macOff, 0, MAC_LEN);
    return body;
  }

  /** `dcid` is the DCID of the Initial that carries the token (= the Retry's source CID). */
  validate(token: Uint8Array, address: string, dcid: Uint8Array, now = Date.now()): TokenCheck {
    if (token.length < 8 + MAC_LEN || token[0] !== TOKEN_VERSION) return { ok: false, reason: 'malformed' };
    const odcidLen = token[7];
    if (odcidLen > MAX_CID || token.length !== 8 + odcidLen + MAC_LEN) return { ok: false, reason: 'malformed' };
    const buf = Buffer.from(token.buffer, token.byteOffset, token.length);
    const macOff = 8 + odcidLen;
    const mac = buf.subarray(macOff);
    const known = this.keys.some((key) => timingSafeEqual(this.mac(key, buf.subarray(0, macOff), address, dcid).subarray(0, MAC_LEN), mac));
    if (!known) return { ok: false, reason: 'bad_mac' };
    const minted = buf.readUIntBE(1, 6);
    // A token from the future is as suspicious as an old one (clock steps are tolerated by 1 s).
    if (now - minted > this.lifetimeMs || minted - now > 1000) return { ok: false, reason: 'expired' };
    return { ok: true, odcid: Buffer.from(buf.subarray(8, macOff)) };
  }

  private mac(key: Buffer, body: Uint8Array, address: string, retryScid: Uint8Array): Buffer {
    return createHmac('sha256', key).update(body).update(address).update(retryScid).digest();
  }
}
