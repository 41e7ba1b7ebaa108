// Connection IDs that quiclb issues encode the shard that owns the connection, in the spirit of the
// IETF QUIC-LB draft (draft-ietf-quic-load-balancers, "plaintext" algorithm), so the primary routes a
// short-header packet by reading two octets, with no table lookup.
//
//   octet 0   : config rotation (2 high bits) | CID length - 1 (6 low bits)   -> 0x0f for config 0
//   octet 1   : shard index (0..255, = MAX_SHARDS)
//   octet 2   : key tag: which stateless reset key of the key ring issued the CID (src/wire/stateless-reset.ts),
//               so that after a key ring rotation the primary and the shards still derive the token an older
//               CID was issued with. The same for every CID issued under one key, so it tells an observer no
//               more than the shard octet does (RFC 9000 §5.1: nothing that links the CIDs of one connection).
//   octet 3-15: 13 random octets (104 bits; RFC 9000 §5.1 wants CIDs that are hard to guess)
//
// Every CID quiclb hands out has this length, so the DCID of a short header is always octets 1..16.
// Why 16 and not QUIC v1's maximum of 20 (RFC 9000 §17.2): after a Retry, the server's transport parameters
// carry the client's original DCID (up to 20 octets) and two of ours (initial and retry source CIDs), and
// quiche 0.18 encodes them into a fixed 128-octet buffer. With 20-octet CIDs a client whose first DCID was
// 16 octets or more (quiche, ngtcp2/curl: 18) overflowed it during a Retry and failed with
// TRANSPORT_PARAMETER_ERROR; 16 leaves room for a 20-octet original DCID with the default parameters
// (test/integration/quic-retry-cid-length.test.ts).
// Config rotation 0b11 is reserved by the draft for "unroutable" CIDs; a rotation other than ours means
// the CID came from a different config generation (or a client), so it never decodes.
import { randomFillSync } from 'node:crypto';

export const CID_LEN = 16;
export const CID_CONFIG_ROTATION = 0;
export const CID_FIRST_OCTET = (CID_CONFIG_ROTATION << 6) | (CID_LEN - 1);
/** Offset of the key tag octet. */
export const CID_KEY_TAG = 2;
/** Octets 2..15 are drawn at random; a key tag then takes octet 2. */
const RANDOM_LEN = CID_LEN - 2;

// One pool refilled in bulk: randomFillSync per CID costs more than the rest of the encoding.
const POOL_SIZE = 4096 - (4096 % RANDOM_LEN);
const pool = Buffer.allocUnsafeSlow(POOL_SIZE);
let poolPos = POOL_SIZE;

function takeRandom(out: Uint8Array, offset: number, len: number): void {
  if (poolPos + len > POOL_SIZE) {
    randomFillSync(pool);
    poolPos = 0;
  }
  out.set(pool.subarray(poolPos, poolPos + len), offset);
  poolPos += len;
}

/**
 * A fresh CID that routes to `shard`, issued under the reset key with tag `keyTag` (ResetTokens.tag); a random
 * tag when absent (tests, and holders of a single key, to whom the tag means nothing).
 */
export function encodeCid(shard: number, keyTag?: number): Buffer {
  if (!Number.isInteger(shard) || shard < 0 || shard > 255) throw new RangeError(`shard index ${shard} out of range 0..255`);
  const cid = Buffer.allocUnsafe(CID_LEN);
  cid[0] = CID_FIRST_OCTET;
  cid[1] = shard;
  takeRandom(cid, 2, RANDOM_LEN);
  if (keyTag !== undefined) cid[CID_KEY_TAG] = keyTag;
  return cid;
}

/**
 * The shard encoded in a CID of length `len` starting at `offset` in `buf`, or -1 when it is not one of
 * ours (wrong length, wrong config rotation/length octet, or out of the buffer).
 */
export function decodeCidShard(buf: Uint8Array, offset: number, len: number): number {
  if (len !== CID_LEN || offset < 0 || offset + CID_LEN > buf.length) return -1;
  if (buf[offset] !== CID_FIRST_OCTET) return -1;
  return buf[offset + 1];
}
