// A QPACK encoder with its own model of the peer's dynamic table (RFC 9204), written independently of
// src/http3/qpack so that it can be an oracle: it emits encoder-stream instructions (Set Dynamic Table
// Capacity, Insert With Name Reference / Literal Name, Duplicate) and field sections that reference the
// static table, the dynamic table (relative and post-base indices) and literals, Huffman-coded or not, and it
// knows the field list every section must decode to. Only Huffman coding itself comes from
// src/http3/qpack/huffman.ts (the code table of RFC 7541 Appendix B is data, not logic).
import { huffmanEncode } from '../../../src/http3/qpack/huffman.ts';
import { STATIC_TABLE } from '../../../src/http3/qpack/static-table.ts';
import type { Rand } from '../random.ts';

export type Field = [string, string];

/** RFC 7541 §5.1 prefixed integer with `flags` above the prefix. */
export function prefixedInt(value: number, prefixBits: number, flags: number): number[] {
  const max = (1 << prefixBits) - 1;
  if (value < max) return [flags | value];
  const out = [flags | max];
  let rest = value - max;
  while (rest >= 128) {
    out.push((rest % 128) | 0x80);
    rest = Math.floor(rest / 128);
  }
  out.push(rest);
  return out;
}

/**
 * Reads a prefixed integer (RFC 7541 §5.1) at `pos`: [value, next position], or null when the bytes end first.
 * The oracles' own reader, independent of src/http3/qpack/prefixed-int.ts, which is under test.
 */
export function readPrefixed(buf: Uint8Array, pos: number, prefixBits: number): [number, number] | null {
  const max = (1 << prefixBits) - 1;
  let v = buf[pos] & max;
  let p = pos + 1;
  if (v < max) return [v, p];
  let m = 0;
  for (;;) {
    if (p >= buf.length) return null;
    const b = buf[p++];
    v += (b & 0x7f) * 2 ** m;
    m += 7;
    if ((b & 0x80) === 0) return [v, p];
  }
}

/** RFC 9204 §4.1.2 string literal: H flag at bit `prefixBits`, length with `prefixBits` bits, then bytes. */
export function stringLiteral(s: string, prefixBits: number, flags: number, huffman: boolean): number[] {
  const raw = Buffer.from(s, 'latin1');
  const bytes = huffman ? Buffer.from(huffmanEncode(raw)) : raw;
  return [...prefixedInt(bytes.length, prefixBits, flags | (huffman ? 1 << prefixBits : 0)), ...bytes];
}

interface Entry {
  abs: number;
  name: string;
  value: string;
}

const entrySize = (name: string, value: string): number => name.length + value.length + 32;

/** The encoder's view of the decoder's dynamic table. */
export class TableModel {
  readonly maxCapacity: number;
  capacity = 0;
  size = 0;
  insertCount = 0;
  entries: Entry[] = [];

  constructor(maxCapacity: number) {
    this.maxCapacity = maxCapacity;
  }

  get maxEntries(): number {
    return Math.floor(this.maxCapacity / 32);
  }

  private evictTo(target: number): void {
    while (this.size > target && this.entries.length > 0) {
      const e = this.entries.shift() as Entry;
      this.size -= entrySize(e.name, e.value);
    }
  }

  setCapacity(c: number): void {
    this.capacity = c;
    this.evictTo(c);
  }

  fits(name: string, value: string): boolean {
    return entrySize(name, value) <= this.capacity;
  }

  insert(name: string, value: string): void {
    const size = entrySize(name, value);
    this.evictTo(this.capacity - size);
    this.entries.push({ abs: this.insertCount++, name, value });
    this.size += size;
  }

  find(name: string, value?: string): Entry | undefined {
    const hits = this.entries.filter((e) => e.name === name && (value === undefined || e.value === value));
    return hits.length > 0 ? hits[hits.length - 1] : undefined;
  }
}

/** Encoder-stream instructions that put `fields` (some of them) into the table, modelled in `t`. */
export function encoderInstructions(r: Rand, t: TableModel, fields: Field[]): number[] {
  const out: number[] = [];
  const huff = () => r.chance(0.4);
  if (t.capacity === 0 || r.chance(0.1)) {
    const c = r.chance(0.7) ? t.maxCapacity : r.int(t.maxCapacity + 1);
    out.push(...prefixedInt(c, 5, 0x20));
    t.setCapacity(c);
  }
  for (const [name, value] of fields) {
    if (!t.fits(name, value) || r.chance(0.3)) continue;
    const staticName = STATIC_TABLE.findIndex(([n]) => n === name);
    const dyn = t.find(name);
    const same = t.find(name, value);
    const choice = r.weighted<string>([
      [3, 'literal'],
      [staticName >= 0 ? 4 : 0, 'static-name'],
      [dyn ? 3 : 0, 'dynamic-name'],
      [same ? 2 : 0, 'duplicate'],
    ]);
    switch (choice) {
      case 'static-name':
        out.push(...prefixedInt(staticName, 6, 0xc0), ...stringLiteral(value, 7, 0, huff()));
        break;
      case 'dynamic-name':
        out.push(...prefixedInt(t.insertCount - 1 - (dyn as Entry).abs, 6, 0x80), ...stringLiteral(value, 7, 0, huff()));
        break;
      case 'duplicate':
        out.push(...prefixedInt(t.insertCount - 1 - (same as Entry).abs, 5, 0x00));
        break;
      default:
        out.push(...stringLiteral(name, 5, 0x40, huff()), ...stringLiteral(value, 7, 0, huff()));
    }
    t.insert(name, value);
  }
  return out;
}

/** An encoded field section for `fields` against table `t` as it is now (RFC 9204 §4.5), and its Required Insert Count. */
export function encodeSection(r: Rand, t: TableModel, fields: Field[], useDynamic = true): { bytes: Buffer; ric: number } {
  type Line = { kind: 'static'; index: number } | { kind: 'static-name'; index: number; value: string } | { kind: 'dyn'; abs: number } | { kind: 'dyn-name'; abs: number; value: string } | { kind: 'literal'; name: string; value: string };
  const lines: Line[] = [];
  for (const [name, value] of fields) {
    const exactStatic = STATIC_TABLE.findIndex(([n, v]) => n === name && v === value);
    const nameStatic = STATIC_TABLE.findIndex(([n]) => n === name);
    const exactDyn = useDynamic ? t.find(name, value) : undefined;
    const nameDyn = useDynamic ? t.find(name) : undefined;
    const choice = r.weighted<string>([
      [1, 'literal'],
      [exactStatic >= 0 ? 4 : 0, 'static'],
      [nameStatic >= 0 ? 2 : 0, 'static-name'],
      [exactDyn ? 5 : 0, 'dyn'],
      [nameDyn ? 2 : 0, 'dyn-name'],
    ]);
    if (choice === 'static') lines.push({ kind: 'static', index: exactStatic });
    else if (choice === 'static-name') lines.push({ kind: 'static-name', index: nameStatic, value });
    else if (choice === 'dyn') lines.push({ kind: 'dyn', abs: (exactDyn as Entry).abs });
    else if (choice === 'dyn-name') lines.push({ kind: 'dyn-name', abs: (nameDyn as Entry).abs, value });
    else lines.push({ kind: 'literal', name, value });
  }
  let ric = 0;
  for (const l of lines) if (l.kind === 'dyn' || l.kind === 'dyn-name') ric = Math.max(ric, l.abs + 1);
  // Base anywhere from 0 to a little past the Required Insert Count: refs below it are relative, others post-base.
  const base = ric === 0 ? r.int(3) : r.range(0, ric + (r.chance(0.2) ? 2 : 0));
  const out: number[] = [];
  // §4.5.1.1 Required Insert Count, encoded modulo 2 * MaxEntries.
  out.push(...prefixedInt(ric === 0 ? 0 : (ric % (2 * t.maxEntries)) + 1, 8, 0));
  // §4.5.1.2 Delta Base with its sign.
  if (base >= ric) out.push(...prefixedInt(base - ric, 7, 0x00));
  else out.push(...prefixedInt(ric - base - 1, 7, 0x80));
  const huff = () => r.chance(0.4);
  for (const l of lines) {
    switch (l.kind) {
      case 'static':
        out.push(...prefixedInt(l.index, 6, 0xc0));
        break;
      case 'static-name':
        out.push(...prefixedInt(l.index, 4, 0x50 | (r.chance(0.1) ? 0x20 : 0)), ...stringLiteral(l.value, 7, 0, huff()));
        break;
      case 'dyn':
        if (l.abs < base) out.push(...prefixedInt(base - 1 - l.abs, 6, 0x80));
        else out.push(...prefixedInt(l.abs - base, 4, 0x10));
        break;
      case 'dyn-name':
        if (l.abs < base) out.push(...prefixedInt(base - 1 - l.abs, 4, 0x40), ...stringLiteral(l.value, 7, 0, huff()));
        else out.push(...prefixedInt(l.abs - base, 3, 0x00), ...stringLiteral(l.value, 7, 0, huff()));
        break;
      case 'literal':
        out.push(...stringLiteral(l.name, 3, 0x20, huff()), ...stringLiteral(l.value, 7, 0, huff()));
        break;
    }
  }
  return { bytes: Buffer.from(out), ric };
}

const REGULAR_NAMES = ['user-agent', 'accept', 'accept-encoding', 'accept-language', 'cookie', 'referer', 'x-custom', 'cache-control', 'content-type', 'origin', 'sec-fetch-mode', 'priority'];

/** A valid request field list (RFC 9114 §4.3.1), lowercase names, values from a small vocabulary so the table gets reused. */
export function requestFields(r: Rand, bodyLength: number): Field[] {
  const method = bodyLength > 0 ? r.pick(['POST', 'PUT', 'PATCH']) : r.pick(['GET', 'GET', 'GET', 'HEAD', 'DELETE', 'OPTIONS']);
  const fields: Field[] = [
    [':method', method],
    [':scheme', 'https'],
    [':authority', r.pick(['moodle.example.edu', 'a', 'moodle.example.edu:9443'])],
    [':path', r.pick(['/', '/ok', '/index.php', '/course/view.php?id=2', '/big', '/chunked', '/204', '/slow'])],
  ];
  if (r.chance(0.2)) fields.push(fields.splice(r.int(4), 1)[0]); // pseudo-header order varies (any order is valid)
  const n = r.size(12);
  for (let i = 0; i < n; i++) {
    const name = r.pick(REGULAR_NAMES);
    const value = r.weighted<string>([
      [6, `v${r.int(4)}`],
      [2, 'Mozilla/5.0 (X11; Linux x86_64) quiclb-fuzz'],
      [1, `MoodleSession=${r.int(10)}; QUICLB_AFFINITY=x`],
      [1, 'x'.repeat(r.size(600))],
      [1, 'caf\u00e9'],
    ]);
    fields.push([name, value]);
  }
  if (bodyLength > 0 && r.chance(0.7)) fields.push(['content-length', String(bodyLength)]);
  return fields.filter((f, i) => i < 4 || !f[0].startsWith(':'));
}
