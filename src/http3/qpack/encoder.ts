// QPACK encoder that never uses the dynamic table (RFC 9204 §2.1): static-table references and literals only, so
// every section has Required Insert Count 0, never blocks the peer and needs no encoder-stream instructions.
// String literals use Huffman coding when it is shorter (RFC 9204 §4.1.2).

import { FRAME_HEADERS } from '../frames.ts';
import { varintSize, writeVarint } from '../varint.ts';
import { huffmanEncodedLength, writeHuffmanString } from './huffman.ts';
import { writePrefixedInt } from './prefixed-int.ts';
import { findStaticExact, findStaticName } from './static-table.ts';

// Room kept in front of the section for a HEADERS frame header: type (1 byte) + length varint (up to 8).
const FRAME_ROOM = 9;

/**
 * Builds one encoded field section into a reused buffer: begin(), add() each line in order, then finish() or
 * finishHeadersFrame(). One exact-size allocation per section.
 */
export class FieldSectionWriter {
  private buf: Buffer = Buffer.allocUnsafe(4096);
  private pos = FRAME_ROOM;

  begin(): void {
    // Section prefix: Required Insert Count 0, Delta Base 0 (RFC 9204 §4.5.1).
    this.pos = FRAME_ROOM;
    this.buf[this.pos++] = 0;
    this.buf[this.pos++] = 0;
  }

  /** Adds a field line; `name` must already be lowercase. Values are latin1 strings (UTF-8 if wider). */
  add(name: string, value: string): void {
    // Worst case: raw UTF-8 (3 bytes per UTF-16 unit) plus two length prefixes.
    this.ensure(3 * (name.length + value.length) + 24);
    const buf = this.buf;
    const exact = findStaticExact(name, value);
    if (exact >= 0) {
      // Indexed Field Line, static (§4.5.2): 1 1 Index(6+)
      this.pos = writePrefixedInt(buf, this.pos, exact, 6, 0xc0);
      return;
    }
    const nameIndex = findStaticName(name);
    if (nameIndex >= 0) {
      // Literal Field Line With Name Reference, static, N=0 (§4.5.4): 0 1 0 1 NameIndex(4+)
      this.pos = writePrefixedInt(buf, this.pos, nameIndex, 4, 0x50);
    } else {
      // Literal Field Line With Literal Name, N=0 (§4.5.6): 0 0 1 0 H NameLen(3+)
      this.pos = this.writeString(name, 3, 0x20);
    }
    this.pos = this.writeString(value, 7, 0x00);
  }

  /** The encoded field section alone. */
  finish(): Uint8Array {
    // A copy: Buffer#slice would return a view that the next section overwrites.
    return new Uint8Array(this.buf.subarray(FRAME_ROOM, this.pos));
  }

  /** The section wrapped in a HEADERS frame (RFC 9114 §7.2.2). */
  finishHeadersFrame(): Uint8Array {
    const len = this.pos - FRAME_ROOM;
    const start = FRAME_ROOM - 1 - varintSize(len);
    this.buf[start] = FRAME_HEADERS;
    writeVarint(this.buf, start + 1, len);
    return new Uint8Array(this.buf.subarray(start, this.pos));
  }

  /** Writes a string literal whose H flag sits just above `prefixBits`; returns the new position. */
  private writeString(s: string, prefixBits: number, flags: number): number {
    const buf = this.buf;
    const huffLen = huffmanEncodedLength(s);
    if (huffLen >= 0 && huffLen < s.length) {
      const p = writePrefixedInt(buf, this.pos, huffLen, prefixBits, flags | (1 << prefixBits));
      return writeHuffmanString(s, buf, p);
    }
    const encoding = huffLen < 0 ? 'utf8' : 'latin1';
    const len = huffLen < 0 ? Buffer.byteLength(s, 'utf8') : s.length;
    const p = writePrefixedInt(buf, this.pos, len, prefixBits, flags);
    return p + buf.write(s, p, encoding);
  }

  private ensure(extra: number): void {
    if (this.pos + extra <= this.buf.length) return;
    const bigger = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.pos + extra));
    this.buf.copy(bigger, 0, 0, this.pos);
    this.buf = bigger;
  }
}

const shared = new FieldSectionWriter();

/** Encodes a whole field list (names lowercase) as a field section. */
export function encodeFieldSection(fields: ReadonlyArray<readonly [string, string]>): Uint8Array {
  shared.begin();
  for (let i = 0; i < fields.length; i++) shared.add(fields[i][0], fields[i][1]);
  return shared.finish();
}
