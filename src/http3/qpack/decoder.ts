// QPACK decoder (RFC 9204): decodes encoded field sections, applies the peer encoder's instructions to the dynamic
// table, holds blocked sections until their inserts arrive, and produces decoder-stream instructions.

import {
  H3Error,
  H3_INTERNAL_ERROR,
  QPACK_DECOMPRESSION_FAILED,
  QPACK_ENCODER_STREAM_ERROR,
  connectionError,
  fieldSectionTooLarge,
} from '../errors.ts';
import { DynamicTable, type TableEntry } from './dynamic-table.ts';
import {
  type Cursor,
  INT_NEED_MORE,
  INT_OVERFLOW,
  STR_NEED_MORE,
  asBuffer,
  prefixedIntSize,
  readPrefixedInt,
  readStringLiteral,
  writePrefixedInt,
} from './prefixed-int.ts';
import { STATIC_TABLE } from './static-table.ts';

export type FieldList = Array<[string, string]>;

export interface QpackDecoderOptions {
  /** Our SETTINGS_QPACK_MAX_TABLE_CAPACITY. */
  maxTableCapacity: number;
  /** Our SETTINGS_QPACK_BLOCKED_STREAMS. */
  maxBlockedStreams: number;
  /** Our SETTINGS_MAX_FIELD_SECTION_SIZE (RFC 9114 §4.2.2 size: name + value + 32 per line). */
  maxFieldSectionSize: number;
  /** Most field lines in one section (default: no limit beyond the size). */
  maxFieldLines?: number;
}

/** A section that was blocked and is now decoded (or failed with a stream-scoped error). */
export interface UnblockedSection {
  streamId: number;
  headers: FieldList | null;
  error: H3Error | null;
}

interface BlockedSection {
  streamId: number;
  requiredInsertCount: number;
  data: Uint8Array;
}

const EMPTY = new Uint8Array(0);

function fail(message: string): H3Error {
  return connectionError(QPACK_DECOMPRESSION_FAILED, message);
}

function encoderStreamFail(message: string): H3Error {
  return connectionError(QPACK_ENCODER_STREAM_ERROR, message);
}

export class QpackDecoder {
  readonly table: DynamicTable;
  private readonly maxEntries: number;
  private readonly maxBlockedStreams: number;
  private readonly maxFieldSectionSize: number;
  private readonly maxFieldLines: number;
  private readonly blocked = new Map<number, BlockedSection>();
  private encoderLeftover: Uint8Array = EMPTY;
  private knownReceivedCount = 0;
  // Pending Section Acknowledgment / Stream Cancellation bytes; Insert Count Increment is added when taken.
  private pending: number[] = [];

  constructor(opts: QpackDecoderOptions) {
    this.table = new DynamicTable(opts.maxTableCapacity);
    this.maxEntries = Math.floor(opts.maxTableCapacity / 32);
    this.maxBlockedStreams = opts.maxBlockedStreams;
    this.maxFieldSectionSize = opts.maxFieldSectionSize;
    this.maxFieldLines = opts.maxFieldLines ?? Infinity;
  }

  get blockedStreamCount(): number {
    return this.blocked.size;
  }

  isBlocked(streamId: number): boolean {
    return this.blocked.has(streamId);
  }

  /**
   * Decodes one encoded field section (a HEADERS payload). Returns the field lines in order, or null when the
   * section waits for inserts (the bytes are copied; the result comes from feedEncoderStream later).
   * Throws H3Error: connection-scoped for QPACK violations, stream-scoped (status 431) when the section is too
   * large. The size is checked line by line and each string literal's length before it is decoded, so a
   * section that references a large dynamic entry many times (a "QPACK bomb") costs at most the limit.
   */
  decodeFieldSection(streamId: number, section: Uint8Array): FieldList | null {
    const c: Cursor = { buf: asBuffer(section), pos: 0, end: section.length };
    const ric = this.readRequiredInsertCount(c);
    if (ric > this.table.insertCount) {
      if (this.blocked.has(streamId)) throw connectionError(H3_INTERNAL_ERROR, 'second blocked section on a stream');
      // RFC 9204 §2.1.2: more blocked streams than we allowed is QPACK_DECOMPRESSION_FAILED.
      if (this.blocked.size >= this.maxBlockedStreams) throw fail('too many blocked streams');
      this.blocked.set(streamId, { streamId, requiredInsertCount: ric, data: section.slice() });
      return null;
    }
    return this.decodeAfterPrefix(streamId, c, ric);
  }

  /** Forgets a stream the caller reset or abandoned (RFC 9204 §2.2.2.2: Stream Cancellation). */
  cancelStream(streamId: number): void {
    this.blocked.delete(streamId);
    // §4.4.2: with a zero maximum capacity the encoder holds no references, so the instruction may be omitted.
    if (this.table.maxCapacity > 0) this.queueInstruction(streamId, 6, 0x40);
  }

  /**
   * Applies encoder-stream bytes (RFC 9204 §4.3). Returns the sections this unblocked, in arrival order. Encoder
   * stream errors and decompression failures throw a connection-scoped H3Error.
   */
  feedEncoderStream(chunk: Uint8Array): UnblockedSection[] {
    let data = chunk;
    if (this.encoderLeftover.length > 0) {
      data = new Uint8Array(this.encoderLeftover.length + chunk.length);
      data.set(this.encoderLeftover, 0);
      data.set(chunk, this.encoderLeftover.length);
    }
    const c: Cursor = { buf: asBuffer(data), pos: 0, end: data.length };
    const before = this.table.insertCount;
    while (c.pos < c.end) {
      if (!this.readEncoderInstruction(c)) break;
    }
    this.encoderLeftover = c.pos < c.end ? data.slice(c.pos) : EMPTY;
    if (this.table.insertCount === before || this.blocked.size === 0) return [];
    return this.unblock();
  }

  /** Decoder-stream bytes to send (RFC 9204 §4.4), or null if none. */
  takeDecoderStreamBytes(): Uint8Array | null {
    const increment = this.table.insertCount - this.knownReceivedCount;
    if (increment > 0) {
      this.queueInstruction(increment, 6, 0x00);
      this.knownReceivedCount = this.table.insertCount;
    }
    if (this.pending.length === 0) return null;
    const out = Uint8Array.from(this.pending);
    this.pending = [];
    return out;
  }

  private queueInstruction(value: number, prefixBits: number, flags: number): void {
    const tmp = new Uint8Array(prefixedIntSize(value, prefixBits));
    writePrefixedInt(tmp, 0, value, prefixBits, flags);
    for (let i = 0; i < tmp.length; i++) this.pending.push(tmp[i]);
  }

  private unblock(): UnblockedSection[] {
    const out: UnblockedSection[] = [];
    for (const b of this.blocked.values()) {
      if (b.requiredInsertCount > this.table.insertCount) continue;
      this.blocked.delete(b.streamId);
      const c: Cursor = { buf: asBuffer(b.data), pos: 0, end: b.data.length };
      this.readRequiredInsertCount(c);
      try {
        out.push({ streamId: b.streamId, headers: this.decodeAfterPrefix(b.streamId, c, b.requiredInsertCount), error: null });
      } catch (err) {
        if (err instanceof H3Error && err.scope === 'stream') out.push({ streamId: b.streamId, headers: null, error: err });
        else throw err;
      }
    }
    return out;
  }

  /** RFC 9204 §4.5.1.1: reconstructs the Required Insert Count from its encoded form. */
  private readRequiredInsertCount(c: Cursor): number {
    const encoded = readPrefixedInt(c, 8);
    if (encoded < 0) throw fail('bad Required Insert Count');
    if (encoded === 0) return 0;
    const fullRange = 2 * this.maxEntries;
    if (encoded > fullRange) throw fail('Required Insert Count out of range');
    const maxValue = this.table.insertCount + this.maxEntries;
    const maxWrapped = Math.floor(maxValue / fullRange) * fullRange;
    let ric = maxWrapped + encoded - 1;
    if (ric > maxValue) {
      if (ric <= fullRange) throw fail('Required Insert Count out of range');
      ric -= fullRange;
    }
    if (ric === 0) throw fail('Required Insert Count encoded as non-zero 0');
    return ric;
  }

  private decodeAfterPrefix(streamId: number, c: Cursor, ric: number): FieldList {
    // RFC 9204 §4.5.1.2: Base from the sign bit and Delta Base.
    if (c.pos >= c.end) throw fail('truncated field section prefix');
    const sign = c.buf[c.pos] & 0x80;
    const delta = readPrefixedInt(c, 7);
    if (delta < 0) throw fail('bad Delta Base');
    let base: number;
    if (sign === 0) {
      base = ric + delta;
    } else {
      if (delta >= ric) throw fail('negative Base');
      base = ric - delta - 1;
    }
    const fields = this.decodeLines(c, ric, base);
    // §4.4.1: a section that referenced the dynamic table is acknowledged; that also acknowledges its inserts.
    if (ric > 0) {
      this.queueInstruction(streamId, 7, 0x80);
      if (ric > this.knownReceivedCount) this.knownReceivedCount = ric;
    }
    return fields;
  }

  private decodeLines(c: Cursor, ric: number, base: number): FieldList {
    const out: FieldList = [];
    const limit = this.maxFieldSectionSize;
    let size = 0;
    while (c.pos < c.end) {
      if (out.length >= this.maxFieldLines) throw fieldSectionTooLarge(`field section has more than ${this.maxFieldLines} lines`);
      const b = c.buf[c.pos];
      let name: string;
      let value: string;
      if (b & 0x80) {
        // Indexed Field Line (§4.5.2): 1 T Index(6+)
        const index = this.readInt(c, 6);
        const e = b & 0x40 ? staticEntry(index, QPACK_DECOMPRESSION_FAILED) : this.dynamicEntry(base - 1 - index, ric);
        name = e[0];
        value = e[1];
      } else if (b & 0x40) {
        // Literal Field Line With Name Reference (§4.5.4): 01 N T NameIndex(4+)
        const index = this.readInt(c, 4);
        name = b & 0x10 ? staticEntry(index, QPACK_DECOMPRESSION_FAILED)[0] : this.dynamicEntry(base - 1 - index, ric)[0];
        value = this.readString(c, 7, limit - size - 32 - name.length);
      } else if (b & 0x20) {
        // Literal Field Line With Literal Name (§4.5.6): 001 N H NameLen(3+)
        name = this.readString(c, 3, limit - size - 32);
        value = this.readString(c, 7, limit - size - 32 - name.length);
      } else if (b & 0x10) {
        // Indexed Field Line With Post-Base Index (§4.5.3): 0001 Index(4+)
        const e = this.dynamicEntry(base + this.readInt(c, 4), ric);
        name = e[0];
        value = e[1];
      } else {
        // Literal Field Line With Post-Base Name Reference (§4.5.5): 0000 N NameIndex(3+)
        name = this.dynamicEntry(base + this.readInt(c, 3), ric)[0];
        value = this.readString(c, 7, limit - size - 32 - name.length);
      }
      size += name.length + value.length + 32;
      if (size > limit) throw fieldSectionTooLarge(`field section larger than ${limit} bytes`);
      out.push([name, value]);
    }
    return out;
  }

  private readInt(c: Cursor, prefixBits: number): number {
    const v = readPrefixedInt(c, prefixBits);
    if (v === INT_NEED_MORE) throw fail('truncated integer');
    if (v === INT_OVERFLOW) throw fail('integer overflow');
    return v;
  }

  /** A string literal of a field line; `budget` is what the section may still grow by (checked before decoding). */
  private readString(c: Cursor, prefixBits: number, budget: number): string {
    if (c.pos < c.end) {
      const start = c.pos;
      const huffman = (c.buf[start] & (1 << prefixBits)) !== 0;
      const len = readPrefixedInt(c, prefixBits);
      c.pos = start;
      // Huffman codes are 5 to 30 bits per octet: `len` encoded bytes decode to at least len * 8 / 30.
      if (len >= 0 && (huffman ? Math.floor((len * 8) / 30) : len) > budget) {
        throw fieldSectionTooLarge(`field section larger than ${this.maxFieldSectionSize} bytes`);
      }
    }
    const s = readStringLiteral(c, prefixBits, c.end - c.pos, QPACK_DECOMPRESSION_FAILED);
    if (typeof s === 'number') throw fail(s === STR_NEED_MORE ? 'truncated string' : 'string length too large');
    return s;
  }

  /** §2.2.3: a reference to an evicted entry or one at or above the Required Insert Count is a failure. */
  private dynamicEntry(absolute: number, ric: number): TableEntry {
    if (absolute < 0 || absolute >= ric) throw fail(`dynamic index ${absolute} outside the section's range`);
    const e = this.table.get(absolute);
    if (e === undefined) throw fail(`dynamic entry ${absolute} was evicted`);
    return e;
  }

  /** Parses one encoder instruction; false (cursor unchanged) when it is not complete yet. */
  private readEncoderInstruction(c: Cursor): boolean {
    const start = c.pos;
    const b = c.buf[start];
    const table = this.table;
    // Strings on the encoder stream must fit the table once decoded; Huffman can expand a byte to 30 bits.
    const maxString = 4 * table.maxCapacity + 16;
    if (b & 0x80) {
      // Insert With Name Reference (§4.3.2): 1 T NameIndex(6+), value string (8-bit prefix)
      const index = readPrefixedInt(c, 6);
      if (index === INT_NEED_MORE) return false;
      if (index === INT_OVERFLOW) throw encoderStreamFail('integer overflow');
      const value = this.readEncoderString(c, 7, maxString);
      if (value === null) {
        c.pos = start;
        return false;
      }
      let name: string;
      if (b & 0x40) {
        name = staticEntry(index, QPACK_ENCODER_STREAM_ERROR)[0];
      } else {
        const e = table.get(table.insertCount - 1 - index);
        if (e === undefined) throw encoderStreamFail(`relative index ${index} not in the dynamic table`);
        name = e[0];
      }
      if (!table.insert(name, value)) throw encoderStreamFail('entry larger than the table capacity');
    } else if (b & 0x40) {
      // Insert With Literal Name (§4.3.3): 01 H NameLen(5+), name, value string
      const name = this.readEncoderString(c, 5, maxString);
      if (name === null) return false;
      const value = this.readEncoderString(c, 7, maxString);
      if (value === null) {
        c.pos = start;
        return false;
      }
      if (!table.insert(name, value)) throw encoderStreamFail('entry larger than the table capacity');
    } else if (b & 0x20) {
      // Set Dynamic Table Capacity (§4.3.1): 001 Capacity(5+)
      const capacity = readPrefixedInt(c, 5);
      if (capacity === INT_NEED_MORE) return false;
      if (capacity === INT_OVERFLOW || !table.setCapacity(capacity)) {
        throw encoderStreamFail('capacity above SETTINGS_QPACK_MAX_TABLE_CAPACITY');
      }
    } else {
      // Duplicate (§4.3.4): 000 Index(5+)
      const index = readPrefixedInt(c, 5);
      if (index === INT_NEED_MORE) return false;
      if (index === INT_OVERFLOW) throw encoderStreamFail('integer overflow');
      const e = table.get(table.insertCount - 1 - index);
      if (e === undefined) throw encoderStreamFail(`duplicate of missing entry ${index}`);
      if (!table.insert(e[0], e[1])) throw encoderStreamFail('entry larger than the table capacity');
    }
    return true;
  }

  /** A string on the encoder stream: null when incomplete (cursor restored), error when impossible. */
  private readEncoderString(c: Cursor, prefixBits: number, maxLength: number): string | null {
    const s = readStringLiteral(c, prefixBits, maxLength, QPACK_ENCODER_STREAM_ERROR);
    if (s === STR_NEED_MORE) return null;
    if (typeof s === 'number') throw encoderStreamFail('string longer than the table capacity allows');
    return s;
  }
}

function staticEntry(index: number, errorCode: number): TableEntry {
  const e = STATIC_TABLE[index];
  if (e === undefined) throw connectionError(errorCode, `static index ${index} out of range`);
  return e;
}
