// HPACK (RFC 7541) for the HTTP/2 fuzzer: an encoder that can produce every representation — indexed (static
// and dynamic), literals with and without indexing and never-indexed, dynamic table size updates, Huffman or
// raw strings — and malformed ones on request, and a decoder for quiclb's response header blocks (to read
// :status). Huffman coding comes from src/http3/qpack/huffman.ts: HPACK and QPACK share RFC 7541 Appendix B.
import { huffmanDecode, huffmanEncode } from '../../../src/http3/qpack/huffman.ts';
import { prefixedInt } from '../h3/qpack-model.ts';
import type { Rand } from '../random.ts';

/** RFC 7541 Appendix A (index 1..61). */
export const HPACK_STATIC: ReadonlyArray<readonly [string, string]> = [
  ['', ''],
  [':authority', ''],
  [':method', 'GET'],
  [':method', 'POST'],
  [':path', '/'],
  [':path', '/index.html'],
  [':scheme', 'http'],
  [':scheme', 'https'],
  [':status', '200'],
  [':status', '204'],
  [':status', '206'],
  [':status', '304'],
  [':status', '400'],
  [':status', '404'],
  [':status', '500'],
  ['accept-charset', ''],
  ['accept-encoding', 'gzip, deflate'],
  ['accept-language', ''],
  ['accept-ranges', ''],
  ['accept', ''],
  ['access-control-allow-origin', ''],
  ['age', ''],
  ['allow', ''],
  ['authorization', ''],
  ['cache-control', ''],
  ['content-disposition', ''],
  ['content-encoding', ''],
  ['content-language', ''],
  ['content-length', ''],
  ['content-location', ''],
  ['content-range', ''],
  ['content-type', ''],
  ['cookie', ''],
  ['date', ''],
  ['etag', ''],
  ['expect', ''],
  ['expires', ''],
  ['from', ''],
  ['host', ''],
  ['if-match', ''],
  ['if-modified-since', ''],
  ['if-none-match', ''],
  ['if-range', ''],
  ['if-unmodified-since', ''],
  ['last-modified', ''],
  ['link', ''],
  ['location', ''],
  ['max-forwards', ''],
  ['proxy-authenticate', ''],
  ['proxy-authorization', ''],
  ['range', ''],
  ['referer', ''],
  ['refresh', ''],
  ['retry-after', ''],
  ['server', ''],
  ['set-cookie', ''],
  ['strict-transport-security', ''],
  ['transfer-encoding', ''],
  ['user-agent', ''],
  ['vary', ''],
  ['via', ''],
  ['www-authenticate', ''],
];

export type Field = [string, string];

function str(s: string, huffman: boolean): number[] {
  const raw = Buffer.from(s, 'latin1');
  const bytes = huffman ? Buffer.from(huffmanEncode(raw)) : raw;
  return [...prefixedInt(bytes.length, 7, huffman ? 0x80 : 0), ...bytes];
}

/** The encoder side of one connection: tracks what it inserted, as the server's decoder will. */
export class HpackEncoder {
  private dynamic: Field[] = [];
  private size = 0;
  private capacity = 4096;

  private insert(f: Field): void {
    this.dynamic.unshift(f);
    this.size += f[0].length + f[1].length + 32;
    while (this.size > this.capacity && this.dynamic.length > 0) {
      const e = this.dynamic.pop() as Field;
      this.size -= e[0].length + e[1].length + 32;
    }
  }

  /** A header block for `fields`, representations chosen at random among the valid ones. */
  encode(r: Rand, fields: Field[]): Buffer {
    const out: number[] = [];
    if (r.chance(0.05)) {
      // §6.3: a size update may only begin a block; at most SETTINGS_HEADER_TABLE_SIZE (4096 by default).
      this.capacity = r.pick([0, 256, 4096]);
      out.push(...prefixedInt(this.capacity, 5, 0x20));
      while (this.size > this.capacity) {
        const e = this.dynamic.pop() as Field;
        this.size -= e[0].length + e[1].length + 32;
      }
    }
    for (const f of fields) {
      const [name, value] = f;
      const exactStatic = HPACK_STATIC.findIndex(([n, v], i) => i > 0 && n === name && v === value);
      const nameStatic = HPACK_STATIC.findIndex(([n], i) => i > 0 && n === name);
      const exactDyn = this.dynamic.findIndex(([n, v]) => n === name && v === value);
      const huff = r.chance(0.5);
      const choice = r.weighted<string>([
        [exactStatic > 0 ? 6 : 0, 'static'],
        [exactDyn >= 0 ? 6 : 0, 'dynamic'],
        [3, 'incremental'],
        [2, 'without'],
        [1, 'never'],
      ]);
      const nameIndex = nameStatic > 0 && r.chance(0.8) ? nameStatic : 0;
      const literal = (prefix: number, flags: number): number[] =>
        nameIndex > 0 ? [...prefixedInt(nameIndex, prefix, flags), ...str(value, huff)] : [...prefixedInt(0, prefix, flags), ...str(name, huff), ...str(value, r.chance(0.5))];
      switch (choice) {
        case 'static':
          out.push(...prefixedInt(exactStatic, 7, 0x80));
          break;
        case 'dynamic':
          out.push(...prefixedInt(HPACK_STATIC.length + exactDyn, 7, 0x80));
          break;
        case 'incremental':
          out.push(...literal(6, 0x40));
          this.insert([name, value]);
          break;
        case 'without':
          out.push(...literal(4, 0x00));
          break;
        default:
          out.push(...literal(4, 0x10));
      }
    }
    return Buffer.from(out);
  }
}

/** Header blocks a decoder must refuse (RFC 7541 §4.2, §5.1, §5.2, §6.1, §6.3): COMPRESSION_ERROR. */
export function badHeaderBlock(r: Rand): Buffer {
  return r.weighted<() => Buffer>([
    [1, () => Buffer.of(0x80)], // indexed 0
    [1, () => Buffer.from(prefixedInt(62 + r.int(1000), 7, 0x80))], // past the tables
    [1, () => Buffer.of(0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f)], // integer overflow
    [1, () => Buffer.of(0x82, 0x3f, 0xe1, 0x1f)], // size update after a field
    [1, () => Buffer.of(0x3f, 0xff, 0xff, 0x03)], // size update above SETTINGS_HEADER_TABLE_SIZE
    [1, () => Buffer.of(0x40, 0x83, 0xff, 0xff, 0xff, 0x01, 0x61)], // Huffman with EOS / bad padding
    [1, () => Buffer.of(0x40, 0x7f, 0xff, 0xff, 0x03)], // literal length past the block
    [1, () => Buffer.of(0x44)], // truncated
    [1, () => r.bytes(1 + r.int(30))],
  ])();
}

/** Decodes response header blocks (one decoder per connection, as the dynamic table is per connection). */
export class HpackDecoder {
  private dynamic: Field[] = [];
  private size = 0;
  private capacity = 4096;

  private int(buf: Buffer, pos: number, prefix: number): [number, number] {
    const max = (1 << prefix) - 1;
    let v = buf[pos] & max;
    let p = pos + 1;
    if (v < max) return [v, p];
    let m = 0;
    for (;;) {
      if (p >= buf.length) throw new Error('truncated integer');
      const b = buf[p++];
      v += (b & 0x7f) * 2 ** m;
      m += 7;
      if ((b & 0x80) === 0) return [v, p];
      if (m > 28) throw new Error('integer overflow');
    }
  }

  private string(buf: Buffer, pos: number): [string, number] {
    const huffman = (buf[pos] & 0x80) !== 0;
    const [len, p] = this.int(buf, pos, 7);
    if (p + len > buf.length) throw new Error('string past the block');
    const bytes = buf.subarray(p, p + len);
    return [Buffer.from(huffman ? huffmanDecode(bytes) : bytes).toString('latin1'), p + len];
  }

  private entry(index: number): Field {
    if (index >= 1 && index < HPACK_STATIC.length) return HPACK_STATIC[index] as Field;
    const e = this.dynamic[index - HPACK_STATIC.length];
    if (e === undefined) throw new Error(`index ${index} outside the tables`);
    return e;
  }

  decode(block: Buffer): Field[] {
    const out: Field[] = [];
    let p = 0;
    while (p < block.length) {
      const b = block[p];
      if (b & 0x80) {
        const [i, q] = this.int(block, p, 7);
        out.push(this.entry(i));
        p = q;
      } else if ((b & 0xe0) === 0x20) {
        const [c, q] = this.int(block, p, 5);
        this.capacity = c;
        this.evict();
        p = q;
      } else {
        const prefix = b & 0x40 ? 6 : 4;
        const [i, q] = this.int(block, p, prefix);
        let name: string;
        p = q;
        if (i === 0) [name, p] = this.string(block, p);
        else name = this.entry(i)[0];
        let value: string;
        [value, p] = this.string(block, p);
        out.push([name, value]);
        if (b & 0x40) {
          this.dynamic.unshift([name, value]);
          this.size += name.length + value.length + 32;
          this.evict();
        }
      }
    }
    return out;
  }

  private evict(): void {
    while (this.size > this.capacity && this.dynamic.length > 0) {
      const e = this.dynamic.pop() as Field;
      this.size -= e[0].length + e[1].length + 32;
    }
  }
}
