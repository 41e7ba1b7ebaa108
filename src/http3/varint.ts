// QUIC variable-length integers (RFC 9000 §16): the two high bits of the first byte give the length (1, 2, 4 or 8
// bytes), the rest is the value in network byte order. Values are JS numbers: exact up to 2^53-1, which covers every
// length, id and setting we act on; larger values (GREASE types and ids) only need to be recognised as "unknown".

import { H3_INTERNAL_ERROR, connectionError } from './errors.ts';

/** Values must stay below 2^62 (RFC 9000 §16); 2^62-1 itself rounds to 2^62 as a double, so compare with `<`. */
export const VARINT_LIMIT = 2 ** 62;
/** Returned by readVarint when the buffer ends inside the varint: not an error while streaming. */
export const VARINT_NEED_MORE = -1;

const TWO_32 = 2 ** 32;

/** Number of bytes of the varint whose first byte is `firstByte`. */
export function varintLength(firstByte: number): number {
  return 1 << (firstByte >> 6);
}

/**
 * Reads the varint at `buf[off]`, not past `end`. Returns its value or VARINT_NEED_MORE if the bytes end first;
 * the caller advances by varintLength(buf[off]).
 */
export function readVarint(buf: Uint8Array, off: number, end: number = buf.length): number {
  if (off >= end) return VARINT_NEED_MORE;
  const b0 = buf[off];
  switch (b0 >> 6) {
    case 0:
      return b0;
    case 1:
      if (off + 2 > end) return VARINT_NEED_MORE;
      return ((b0 & 0x3f) << 8) | buf[off + 1];
    case 2:
      if (off + 4 > end) return VARINT_NEED_MORE;
      return ((b0 & 0x3f) * 0x1000000) + ((buf[off + 1] << 16) | (buf[off + 2] << 8) | buf[off + 3]);
    default: {
      if (off + 8 > end) return VARINT_NEED_MORE;
      const hi = ((b0 & 0x3f) * 0x1000000) + ((buf[off + 1] << 16) | (buf[off + 2] << 8) | buf[off + 3]);
      const lo = (buf[off + 4] * 0x1000000) + ((buf[off + 5] << 16) | (buf[off + 6] << 8) | buf[off + 7]);
      return hi * TWO_32 + lo;
    }
  }
}

/** Exact form of readVarint for values above 2^53 (tests, logging of GREASE ids). */
export function readVarintBigInt(buf: Uint8Array, off: number, end: number = buf.length): bigint | null {
  if (off >= end) return null;
  const len = varintLength(buf[off]);
  if (off + len > end) return null;
  let v = BigInt(buf[off] & 0x3f);
  for (let i = 1; i < len; i++) v = (v << 8n) | BigInt(buf[off + i]);
  return v;
}

/** Convenience form: value and byte length, or null when more bytes are needed. */
export function decodeVarint(buf: Uint8Array, off = 0): { value: number; length: number } | null {
  const value = readVarint(buf, off);
  if (value === VARINT_NEED_MORE) return null;
  return { value, length: varintLength(buf[off]) };
}

/** Bytes needed to encode `value` (RFC 9000 §16: the shortest form). */
export function varintSize(value: number): number {
  if (value < 0x40) return 1;
  if (value < 0x4000) return 2;
  if (value < 0x40000000) return 4;
  return 8;
}

function checkEncodable(value: number): void {
  if (!Number.isInteger(value) || value < 0 || value >= VARINT_LIMIT) {
    throw connectionError(H3_INTERNAL_ERROR, `varint out of range: ${value}`);
  }
}

/** Writes `value` at `buf[off]` and returns the offset after it. The caller sized `buf` with varintSize. */
export function writeVarint(buf: Uint8Array, off: number, value: number): number {
  checkEncodable(value);
  if (value < 0x40) {
    buf[off] = value;
    return off + 1;
  }
  if (value < 0x4000) {
    buf[off] = 0x40 | (value >> 8);
    buf[off + 1] = value & 0xff;
    return off + 2;
  }
  if (value < 0x40000000) {
    buf[off] = 0x80 | (value >>> 24);
    buf[off + 1] = (value >>> 16) & 0xff;
    buf[off + 2] = (value >>> 8) & 0xff;
    buf[off + 3] = value & 0xff;
    return off + 4;
  }
  const hi = Math.floor(value / TWO_32);
  const lo = value - hi * TWO_32;
  buf[off] = 0xc0 | (hi >>> 24);
  buf[off + 1] = (hi >>> 16) & 0xff;
  buf[off + 2] = (hi >>> 8) & 0xff;
  buf[off + 3] = hi & 0xff;
  buf[off + 4] = lo >>> 24;
  buf[off + 5] = (lo >>> 16) & 0xff;
  buf[off + 6] = (lo >>> 8) & 0xff;
  buf[off + 7] = lo & 0xff;
  return off + 8;
}

/** Encodes `value` into a fresh buffer. */
export function encodeVarint(value: number): Uint8Array {
  checkEncodable(value);
  const out = new Uint8Array(varintSize(value));
  writeVarint(out, 0, value);
  return out;
}

/** Exact encoder for the full 62-bit range (2^62-1 is not a double). */
export function encodeVarintBigInt(value: bigint): Uint8Array {
  if (value < 0n || value >= 1n << 62n) throw connectionError(H3_INTERNAL_ERROR, `varint out of range: ${value}`);
  const len = value < 0x40n ? 1 : value < 0x4000n ? 2 : value < 0x40000000n ? 4 : 8;
  const out = new Uint8Array(len);
  let v = value;
  for (let i = len - 1; i >= 0; i--) {
    out[i] = Number(v & 0xffn);
    v >>= 8n;
  }
  out[0] |= (len === 1 ? 0 : len === 2 ? 0x40 : len === 4 ? 0x80 : 0xc0);
  return out;
}
