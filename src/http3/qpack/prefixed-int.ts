// Prefixed integers (RFC 7541 §5.1, used by QPACK per RFC 9204 §4.1.1) and QPACK string literals (RFC 9204 §4.1.2).
// Readers work on a cursor and report "need more bytes" and "too large" as return values, not exceptions, so the
// field-section decoder and the streaming encoder-stream parser can map them to their own error codes.

import { huffmanDecodeString } from './huffman.ts';

/** A read position over a byte buffer (a Buffer, for cheap latin1 string slicing). */
export interface Cursor {
  buf: Buffer;
  pos: number;
  end: number;
}

export const INT_NEED_MORE = -1;
export const INT_OVERFLOW = -2;

/** Views any Uint8Array as a Buffer without copying. */
export function asBuffer(u8: Uint8Array): Buffer {
  return Buffer.isBuffer(u8) ? u8 : Buffer.from(u8.buffer, u8.byteOffset, u8.byteLength);
}

export function cursorOf(u8: Uint8Array): Cursor {
  return { buf: asBuffer(u8), pos: 0, end: u8.length };
}

/**
 * Reads an integer whose first byte keeps its low `prefixBits` bits for the value. Advances c.pos on success.
 * Returns INT_NEED_MORE (pos unchanged) or INT_OVERFLOW for values over 2^53-1: RFC 9204 §4.1.1 lets values reach
 * 62 bits, but no index, length or count we accept comes near 2^53, so such a value is an error either way.
 */
export function readPrefixedInt(c: Cursor, prefixBits: number): number {
  const buf = c.buf;
  let p = c.pos;
  if (p >= c.end) return INT_NEED_MORE;
  const max = (1 << prefixBits) - 1;
  let value = buf[p++] & max;
  if (value < max) {
    c.pos = p;
    return value;
  }
  let m = 0;
  for (;;) {
    if (p >= c.end) return INT_NEED_MORE;
    if (m > 49) return INT_OVERFLOW;
    const b = buf[p++];
    value += (b & 0x7f) * 2 ** m;
    if (value > Number.MAX_SAFE_INTEGER) return INT_OVERFLOW;
    if ((b & 0x80) === 0) break;
    m += 7;
  }
  c.pos = p;
  return value;
}

/** Bytes writePrefixedInt will use. */
export function prefixedIntSize(value: number, prefixBits: number): number {
  const max = (1 << prefixBits) - 1;
  if (value < max) return 1;
  let n = 2;
  let rest = value - max;
  while (rest >= 128) {
    rest = Math.floor(rest / 128);
    n++;
  }
  return n;
}

/** Writes `value` with `flags` in the bits above the prefix; returns the offset after it. */
export function writePrefixedInt(out: Uint8Array, off: number, value: number, prefixBits: number, flags: number): number {
  const max = (1 << prefixBits) - 1;
  if (value < max) {
    out[off] = flags | value;
    return off + 1;
  }
  out[off++] = flags | max;
  let rest = value - max;
  while (rest >= 128) {
    out[off++] = (rest % 128) | 0x80;
    rest = Math.floor(rest / 128);
  }
  out[off++] = rest;
  return off;
}

/** Result codes of readStringLiteral besides a string. */
export const STR_NEED_MORE = 0;
export const STR_OVERFLOW = 1;
export const STR_TOO_LONG = 2;

/**
 * Reads a string literal whose Huffman flag is bit `prefixBits` of the first byte and whose length uses the
 * `prefixBits` bits below it. Returns the string (latin1), or a STR_* number; Huffman errors throw H3Error(errorCode).
 * `maxLength` bounds the encoded length so a hostile length cannot make a caller wait for gigabytes.
 */
export function readStringLiteral(c: Cursor, prefixBits: number, maxLength: number, errorCode: number): string | number {
  const start = c.pos;
  if (start >= c.end) return STR_NEED_MORE;
  const huffman = (c.buf[start] & (1 << prefixBits)) !== 0;
  const len = readPrefixedInt(c, prefixBits);
  if (len === INT_NEED_MORE) return STR_NEED_MORE;
  if (len === INT_OVERFLOW) return STR_OVERFLOW;
  if (len > maxLength) return STR_TOO_LONG;
  const s = c.pos;
  if (c.end - s < len) {
    c.pos = start;
    return STR_NEED_MORE;
  }
  c.pos = s + len;
  if (len === 0) return '';
  return huffman ? huffmanDecodeString(c.buf, s, s + len, errorCode) : c.buf.toString('latin1', s, s + len);
}
