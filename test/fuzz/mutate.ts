// Byte-level mutation, shared by every protocol's fuzzer: the structure-aware generators build a valid or
// nearly valid input, and these operators then break it the ways parsers get broken (bit flips, boundary
// bytes, protocol tokens inserted, ranges cut, doubled or moved, lengths made huge, truncation).
import type { Rand } from './random.ts';

/** Bytes that sit on parser boundaries in text protocols and varint/length encodings. */
const INTERESTING_BYTES = [0x00, 0x01, 0x09, 0x0a, 0x0d, 0x20, 0x22, 0x25, 0x2c, 0x2f, 0x3a, 0x3b, 0x3d, 0x3f, 0x40, 0x7f, 0x80, 0xc0, 0xfe, 0xff];

export type Mutator = (r: Rand, data: Buffer, dict: readonly Buffer[]) => Buffer;

const flipBit: Mutator = (r, d) => {
  if (d.length === 0) return d;
  const out = Buffer.from(d);
  out[r.int(out.length)] ^= 1 << r.int(8);
  return out;
};

const setInteresting: Mutator = (r, d) => {
  if (d.length === 0) return Buffer.of(r.pick(INTERESTING_BYTES));
  const out = Buffer.from(d);
  out[r.int(out.length)] = r.pick(INTERESTING_BYTES);
  return out;
};

const setRandom: Mutator = (r, d) => {
  if (d.length === 0) return r.bytes(1);
  const out = Buffer.from(d);
  out[r.int(out.length)] = r.int(256);
  return out;
};

const insertToken: Mutator = (r, d, dict) => {
  const token = dict.length > 0 && r.chance(0.8) ? r.pick(dict) : r.bytes(1 + r.int(8));
  const at = r.int(d.length + 1);
  return Buffer.concat([d.subarray(0, at), token, d.subarray(at)]);
};

const overwriteToken: Mutator = (r, d, dict) => {
  if (dict.length === 0 || d.length === 0) return insertToken(r, d, dict);
  const token = r.pick(dict);
  const at = r.int(d.length);
  const out = Buffer.from(d);
  token.copy(out, at, 0, Math.min(token.length, out.length - at));
  return out;
};

const deleteRange: Mutator = (r, d) => {
  if (d.length === 0) return d;
  const at = r.int(d.length);
  const len = 1 + r.size(Math.min(64, Math.max(0, d.length - at - 1)));
  return Buffer.concat([d.subarray(0, at), d.subarray(at + len)]);
};

const duplicateRange: Mutator = (r, d) => {
  if (d.length === 0) return d;
  const at = r.int(d.length);
  const len = 1 + r.size(Math.min(256, d.length - at - 1));
  const piece = d.subarray(at, at + len);
  const times = r.chance(0.9) ? 1 : 2 + r.size(50);
  return Buffer.concat([d.subarray(0, at + len), ...Array.from({ length: times }, () => piece), d.subarray(at + len)]);
};

const moveRange: Mutator = (r, d) => {
  if (d.length < 2) return d;
  const at = r.int(d.length);
  const len = 1 + r.size(Math.min(64, d.length - at - 1));
  const piece = d.subarray(at, at + len);
  const rest = Buffer.concat([d.subarray(0, at), d.subarray(at + len)]);
  const to = r.int(rest.length + 1);
  return Buffer.concat([rest.subarray(0, to), piece, rest.subarray(to)]);
};

const truncate: Mutator = (r, d) => (d.length === 0 ? d : d.subarray(0, r.int(d.length)));

/** Rewrites a run of ASCII digits (a length, a chunk size, a status) into another number. */
const changeNumber: Mutator = (r, d) => {
  const text = d.toString('latin1');
  const runs = [...text.matchAll(/[0-9a-fA-F]+/g)];
  if (runs.length === 0) return flipBit(r, d, []);
  const m = r.pick(runs);
  const replacement = r.pick(['0', '1', '-1', '00', '+5', ' 5', '5 ', '0x10', 'ffffffffffffffff', '18446744073709551616', '4294967296', '9007199254740993', String(r.int(1 << 20)), m[0] + m[0]]);
  return Buffer.from(text.slice(0, m.index) + replacement + text.slice((m.index ?? 0) + m[0].length), 'latin1');
};

export const MUTATORS: readonly Mutator[] = [flipBit, setInteresting, setRandom, insertToken, overwriteToken, deleteRange, duplicateRange, moveRange, truncate, changeNumber];

/** Applies 1..maxOps random mutators. */
export function mutate(r: Rand, data: Buffer, dict: readonly Buffer[] = [], maxOps = 4): Buffer {
  let out = data;
  const ops = 1 + r.int(maxOps);
  for (let i = 0; i < ops; i++) out = r.pick(MUTATORS)(r, out, dict);
  return out;
}

/** Splits bytes into the TCP writes (or QUIC stream writes) a client makes: whole, halves, or many small pieces. */
export function splitWrites(r: Rand, data: Buffer): Buffer[] {
  if (data.length <= 1) return [data];
  const mode = r.weighted([
    [5, 'whole'],
    [3, 'random'],
    [1, 'bytes'],
  ] as const);
  if (mode === 'whole') return [data];
  if (mode === 'bytes' && data.length <= 512) return [...data].map((b) => Buffer.of(b));
  const out: Buffer[] = [];
  let pos = 0;
  const pieces = 1 + r.int(8);
  while (pos < data.length) {
    const n = out.length >= pieces ? data.length - pos : 1 + r.int(Math.max(1, data.length - pos));
    out.push(data.subarray(pos, pos + n));
    pos += n;
  }
  return out;
}
