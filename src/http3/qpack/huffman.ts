// HPACK/QPACK Huffman code (RFC 7541 §5.2 and Appendix B; RFC 9204 §4.1.2 reuses it).
// The code is canonical, so the table is stored as code lengths only and the codes are rebuilt at load time.
// Decoding walks a precomputed nibble automaton (256 tree nodes x 16 nibbles): two lookups per input byte, at most one
// symbol per nibble since no code is shorter than 5 bits, and no bit accounting in the loop.

import { H3Error, QPACK_DECOMPRESSION_FAILED, connectionError } from '../errors.ts';

// Code length of symbols 0..255 and EOS (256), RFC 7541 Appendix B, 16 per line.
const LENGTHS = [
  13, 23, 28, 28, 28, 28, 28, 28, 28, 24, 30, 28, 28, 30, 28, 28,
  28, 28, 28, 28, 28, 28, 30, 28, 28, 28, 28, 28, 28, 28, 28, 28,
  6, 10, 10, 12, 13, 6, 8, 11, 10, 10, 8, 11, 8, 6, 6, 6,
  5, 5, 5, 6, 6, 6, 6, 6, 6, 6, 7, 8, 15, 6, 12, 10,
  13, 6, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7,
  7, 7, 7, 7, 7, 7, 7, 7, 8, 7, 8, 13, 19, 13, 14, 6,
  15, 5, 6, 5, 6, 5, 6, 6, 6, 5, 7, 7, 6, 6, 6, 5,
  6, 7, 6, 5, 5, 6, 7, 7, 7, 7, 7, 15, 11, 14, 13, 28,
  20, 22, 20, 20, 22, 22, 22, 23, 22, 23, 23, 23, 23, 23, 24, 23,
  24, 24, 22, 23, 24, 23, 23, 23, 23, 21, 22, 23, 22, 23, 23, 24,
  22, 21, 20, 22, 22, 23, 23, 21, 23, 22, 22, 24, 21, 22, 23, 23,
  21, 21, 22, 21, 23, 22, 23, 23, 20, 22, 22, 22, 23, 22, 22, 23,
  26, 26, 20, 19, 22, 23, 22, 25, 26, 26, 26, 27, 27, 26, 24, 25,
  19, 21, 26, 27, 27, 26, 27, 24, 21, 21, 26, 26, 28, 27, 27, 27,
  20, 24, 20, 21, 22, 21, 21, 23, 22, 22, 25, 25, 24, 24, 26, 23,
  26, 27, 26, 26, 27, 27, 27, 27, 27, 28, 27, 27, 27, 27, 27, 26,
  30,
];

export const HUFFMAN_EOS = 256;
/** Code length per symbol (0..256). */
export const HUFFMAN_LENGTHS = Uint8Array.from(LENGTHS);
/** Code per symbol, right-aligned. */
export const HUFFMAN_CODES = new Uint32Array(257);

// Canonical assignment: shorter codes first, within a length in symbol order.
{
  let code = 0;
  for (let len = 1; len <= 30; len++) {
    for (let sym = 0; sym <= 256; sym++) {
      if (LENGTHS[sym] === len) HUFFMAN_CODES[sym] = code++;
    }
    code *= 2;
  }
}

// Decoding automaton. Tree nodes: 0 is the root; an internal node has children in LEFT/RIGHT, where a value
// >= 0x1000 is a leaf for symbol (value - 0x1000).
const LEAF = 0x1000;
const NODES = 256; // a full binary tree with 257 leaves has 256 internal nodes
const F_FAIL = 1 << 17;
const TRANSITIONS = new Uint32Array(NODES * 16); // next node (8 bits) | (symbol + 1) << 8 (9 bits) | F_FAIL
const ACCEPTING = new Uint8Array(NODES); // nodes where input may end: root, or up to 7 one-bits below it

{
  const left = new Int32Array(NODES).fill(-1);
  const right = new Int32Array(NODES).fill(-1);
  let count = 1;
  for (let sym = 0; sym <= 256; sym++) {
    const len = LENGTHS[sym];
    const code = HUFFMAN_CODES[sym];
    let node = 0;
    for (let b = len - 1; b >= 0; b--) {
      const side = (code >>> b) & 1 ? right : left;
      if (b === 0) {
        side[node] = LEAF + sym;
      } else {
        if (side[node] === -1) side[node] = count++;
        node = side[node];
      }
    }
  }
  // RFC 7541 §5.2: padding is at most 7 bits, all ones (the high bits of EOS).
  let n = 0;
  ACCEPTING[0] = 1;
  for (let d = 1; d <= 7; d++) {
    n = right[n];
    ACCEPTING[n] = 1;
  }
  for (let state = 0; state < NODES; state++) {
    for (let nibble = 0; nibble < 16; nibble++) {
      let node = state;
      let emitted = 0;
      let fail = 0;
      for (let b = 3; b >= 0; b--) {
        const child = (nibble >> b) & 1 ? right[node] : left[node];
        if (child >= LEAF) {
          const sym = child - LEAF;
          if (sym === HUFFMAN_EOS) fail = F_FAIL; // §5.2: an EOS symbol in the string is an error
          emitted = sym + 1;
          node = 0;
        } else {
          node = child;
        }
      }
      TRANSITIONS[(state << 4) | nibble] = node | (emitted << 8) | fail;
    }
  }
}

let scratch = new Uint8Array(4096);

function huffmanError(code: number, message: string): H3Error {
  return connectionError(code, `Huffman: ${message}`);
}

/**
 * Decodes buf[start..end) into a reused scratch buffer; returns the number of bytes written to `huffmanScratch()`.
 * Throws H3Error(`errorCode`) on an EOS symbol, padding over 7 bits, or padding that is not all ones.
 */
export function huffmanDecodeInto(buf: Uint8Array, start: number, end: number, errorCode: number): number {
  // No code is shorter than 5 bits: at most 8/5 output bytes per input byte.
  const max = Math.ceil(((end - start) * 8) / 5);
  if (scratch.length < max) scratch = new Uint8Array(Math.max(max, scratch.length * 2));
  const out = scratch;
  let state = 0;
  let o = 0;
  for (let i = start; i < end; i++) {
    const byte = buf[i];
    let e = TRANSITIONS[(state << 4) | (byte >> 4)];
    if (e & F_FAIL) throw huffmanError(errorCode, 'EOS symbol in string');
    let sym = (e >> 8) & 0x1ff;
    if (sym !== 0) out[o++] = sym - 1;
    state = e & 0xff;
    e = TRANSITIONS[(state << 4) | (byte & 0x0f)];
    if (e & F_FAIL) throw huffmanError(errorCode, 'EOS symbol in string');
    sym = (e >> 8) & 0x1ff;
    if (sym !== 0) out[o++] = sym - 1;
    state = e & 0xff;
  }
  if (ACCEPTING[state] === 0) throw huffmanError(errorCode, 'invalid padding');
  return o;
}

/** The buffer huffmanDecodeInto writes to (valid until the next call). */
export function huffmanScratch(): Uint8Array {
  return scratch;
}

/** Decodes to a latin1 string (field names and values are octets; latin1 keeps them 1:1). */
export function huffmanDecodeString(
  buf: Uint8Array,
  start: number,
  end: number,
  errorCode: number = QPACK_DECOMPRESSION_FAILED,
): string {
  const n = huffmanDecodeInto(buf, start, end, errorCode);
  return Buffer.from(scratch.buffer, scratch.byteOffset, n).toString('latin1');
}

/** Decodes to fresh bytes. */
export function huffmanDecode(buf: Uint8Array, errorCode: number = QPACK_DECOMPRESSION_FAILED): Uint8Array {
  const n = huffmanDecodeInto(buf, 0, buf.length, errorCode);
  return scratch.slice(0, n);
}

/** Encoded size in bytes of a latin1 string, or -1 if it has a character above 0xff (send it raw as UTF-8). */
export function huffmanEncodedLength(s: string): number {
  let bits = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c > 0xff) return -1;
    bits += HUFFMAN_LENGTHS[c];
  }
  return (bits + 7) >> 3;
}

/**
 * Writes the Huffman code of a latin1 string at out[off] and returns the offset after it. Codes over 16 bits are
 * written in two parts so the accumulator stays within 32-bit integer arithmetic.
 */
export function writeHuffmanString(s: string, out: Uint8Array, off: number): number {
  let acc = 0;
  let n = 0;
  let o = off;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    let code = HUFFMAN_CODES[c];
    let len = HUFFMAN_LENGTHS[c];
    if (len > 16) {
      const hiLen = len - 16;
      acc = (acc << hiLen) | (code >>> 16);
      n += hiLen;
      while (n >= 8) {
        n -= 8;
        out[o++] = (acc >>> n) & 0xff;
      }
      acc &= (1 << n) - 1;
      code &= 0xffff;
      len = 16;
    }
    acc = (acc << len) | code;
    n += len;
    while (n >= 8) {
      n -= 8;
      out[o++] = (acc >>> n) & 0xff;
    }
    acc &= (1 << n) - 1;
  }
  if (n > 0) out[o++] = ((acc << (8 - n)) | (0xff >> n)) & 0xff; // pad with the high bits of EOS (all ones)
  return o;
}

/** Encodes bytes (tests and tools); the wire code works on strings. */
export function huffmanEncode(bytes: Uint8Array): Uint8Array {
  const s = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('latin1');
  const out = new Uint8Array(huffmanEncodedLength(s));
  writeHuffmanString(s, out, 0);
  return out;
}
