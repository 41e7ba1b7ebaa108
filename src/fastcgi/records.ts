// FastCGI 1.0 records (https://fast-cgi.github.io/spec, "FastCGI Specification", Open Market 1996): encoding of
// what a web server sends (BEGIN_REQUEST, PARAMS, STDIN, ABORT_REQUEST) and an incremental parser for record
// streams that accepts any chunk boundaries. Sans-IO: bytes in, bytes and events out.
//
// No npm library fitted: `fastcgi-stream` 1.0.0 depends on the unmaintained `bufferlist`, `fastcgi-client`
// 0.2.0 and `node-phpfpm` 1.0.1 buffer whole responses and have no backpressure. The protocol is small.

import { FastCgiError } from './errors.ts';

export const FCGI_VERSION_1 = 1;
export const FCGI_HEADER_LEN = 8;
/** Spec §3.3: contentLength is a 16-bit field. */
export const FCGI_MAX_CONTENT = 0xffff;

export const FCGI_BEGIN_REQUEST = 1;
export const FCGI_ABORT_REQUEST = 2;
export const FCGI_END_REQUEST = 3;
export const FCGI_PARAMS = 4;
export const FCGI_STDIN = 5;
export const FCGI_STDOUT = 6;
export const FCGI_STDERR = 7;
export const FCGI_DATA = 8;

export const FCGI_RESPONDER = 1;
/** Spec §5.1: the application keeps the connection open after the request. */
export const FCGI_KEEP_CONN = 1;

export const FCGI_REQUEST_COMPLETE = 0;
export const FCGI_CANT_MPX_CONN = 1;
export const FCGI_OVERLOADED = 2;
export const FCGI_UNKNOWN_ROLE = 3;

const STREAM_TYPES = new Set([FCGI_PARAMS, FCGI_STDIN, FCGI_STDOUT, FCGI_STDERR, FCGI_DATA]);

// ---- encoding -------------------------------------------------------------------------------------

export function recordHeader(type: number, requestId: number, contentLength: number, paddingLength = 0): Buffer {
  const h = Buffer.allocUnsafe(FCGI_HEADER_LEN);
  h[0] = FCGI_VERSION_1;
  h[1] = type;
  h.writeUInt16BE(requestId, 2);
  h.writeUInt16BE(contentLength, 4);
  h[6] = paddingLength;
  h[7] = 0;
  return h;
}

/** Spec §5.1: FCGI_BeginRequestBody { roleB1, roleB0, flags, reserved[5] }, role RESPONDER. */
export function beginRequestRecord(requestId: number, keepConn: boolean): Buffer {
  const body = Buffer.alloc(8);
  body.writeUInt16BE(FCGI_RESPONDER, 0);
  body[2] = keepConn ? FCGI_KEEP_CONN : 0;
  return Buffer.concat([recordHeader(FCGI_BEGIN_REQUEST, requestId, 8), body]);
}

export function abortRequestRecord(requestId: number): Buffer {
  return recordHeader(FCGI_ABORT_REQUEST, requestId, 0);
}

/** The empty record that closes a stream (PARAMS, STDIN, STDOUT, ...), spec §3.3. */
export function endOfStreamRecord(type: number, requestId: number): Buffer {
  return recordHeader(type, requestId, 0);
}

const MAX_PAIR_LENGTH = 0x7fffffff;

function lengthBytes(n: number): Buffer {
  // Spec §3.4: lengths below 128 take one byte; others four, with the top bit set.
  if (n < 128) return Buffer.from([n]);
  const b = Buffer.allocUnsafe(4);
  b.writeUInt32BE((n | 0x80000000) >>> 0, 0);
  return b;
}

/** One name-value pair (spec §3.4). Names and values are sent as UTF-8 bytes. */
export function encodeNameValuePair(name: string, value: string): Buffer {
  const n = Buffer.from(name, 'utf8');
  const v = Buffer.from(value, 'utf8');
  if (n.length > MAX_PAIR_LENGTH || v.length > MAX_PAIR_LENGTH) throw new RangeError('FastCGI name or value longer than 2^31-1 bytes');
  return Buffer.concat([lengthBytes(n.length), lengthBytes(v.length), n, v]);
}

/**
 * Every PARAMS record of a request, the closing empty one included, as one buffer. Records are padded to a
 * multiple of 8 bytes as spec §3.3 recommends; a pair may span records (the stream is one byte sequence).
 */
export function paramsRecords(requestId: number, params: Iterable<readonly [string, string]>): Buffer {
  const pairs: Buffer[] = [];
  for (const [name, value] of params) pairs.push(encodeNameValuePair(name, value));
  const stream = Buffer.concat(pairs);
  const out: Buffer[] = [];
  const maxContent = FCGI_MAX_CONTENT - (FCGI_MAX_CONTENT % 8); // 65528: whole records stay 8-aligned
  for (let off = 0; off < stream.length; off += maxContent) {
    const content = stream.subarray(off, Math.min(stream.length, off + maxContent));
    const padding = (8 - (content.length % 8)) % 8;
    out.push(recordHeader(FCGI_PARAMS, requestId, content.length, padding), content, Buffer.alloc(padding));
  }
  out.push(endOfStreamRecord(FCGI_PARAMS, requestId));
  return Buffer.concat(out);
}

/**
 * Stream records (STDIN, DATA) carrying `data`, without copying it: header, slice, header, slice, ... ready for
 * a corked socket or writev. Empty `data` gives no records (the closing record is endOfStreamRecord's job).
 */
export function streamRecordParts(type: number, requestId: number, data: Uint8Array): Uint8Array[] {
  const parts: Uint8Array[] = [];
  for (let off = 0; off < data.length; off += FCGI_MAX_CONTENT) {
    const content = data.subarray(off, Math.min(data.length, off + FCGI_MAX_CONTENT));
    parts.push(recordHeader(type, requestId, content.length), content);
  }
  return parts;
}

// ---- decoding -------------------------------------------------------------------------------------

export type RecordEvent =
  /** Content of a stream record, delivered as it arrives (any number of pieces per record). `data` is empty
   *  only for the empty record that closes the stream. The slice may share memory with the pushed chunk. */
  | { kind: 'stream'; type: number; requestId: number; data: Buffer }
  | { kind: 'begin'; requestId: number; role: number; flags: number }
  | { kind: 'abort'; requestId: number }
  | { kind: 'end'; requestId: number; appStatus: number; protocolStatus: number };

export type RecordParserRole =
  /** What a web server reads: STDOUT, STDERR, END_REQUEST. */
  | 'client'
  /** What an application reads: BEGIN_REQUEST, PARAMS, STDIN, DATA, ABORT_REQUEST (tests use it as a fake php-fpm). */
  | 'server';

const ACCEPTED: Record<RecordParserRole, ReadonlySet<number>> = {
  client: new Set([FCGI_STDOUT, FCGI_STDERR, FCGI_END_REQUEST]),
  server: new Set([FCGI_BEGIN_REQUEST, FCGI_PARAMS, FCGI_STDIN, FCGI_DATA, FCGI_ABORT_REQUEST]),
};

/** Fixed content lengths of the non-stream records (spec §5.1, §5.4, §5.5). */
const FIXED_LENGTH: Record<number, number> = { [FCGI_BEGIN_REQUEST]: 8, [FCGI_END_REQUEST]: 8, [FCGI_ABORT_REQUEST]: 0 };

type State = 'header' | 'content' | 'padding' | 'failed';

/**
 * Incremental record parser. Memory is bounded: it keeps at most one 8-byte header and one 8-byte fixed body;
 * stream content is handed on in slices of the pushed chunks. Malformed input throws FastCgiError
 * QUICLB_FCGI_PROTOCOL, and every later push() throws it again.
 */
export class RecordParser {
  private readonly accepted: ReadonlySet<number>;
  private readonly onEvent: (e: RecordEvent) => void;
  private state: State = 'header';
  private readonly scratch = Buffer.alloc(8);
  private scratchLen = 0;
  private type = 0;
  private requestId = 0;
  private recordLength = 0;
  private contentLeft = 0;
  private paddingLeft = 0;
  private failure: FastCgiError | undefined;

  constructor(role: RecordParserRole, onEvent: (e: RecordEvent) => void) {
    this.accepted = ACCEPTED[role];
    this.onEvent = onEvent;
  }

  /** True between records: nothing of a record is pending. */
  get atBoundary(): boolean {
    return this.state === 'header' && this.scratchLen === 0;
  }

  push(chunk: Buffer): void {
    if (this.failure !== undefined) throw this.failure;
    let off = 0;
    while (off < chunk.length) {
      switch (this.state) {
        case 'header': {
          const n = Math.min(FCGI_HEADER_LEN - this.scratchLen, chunk.length - off);
          chunk.copy(this.scratch, this.scratchLen, off, off + n);
          this.scratchLen += n;
          off += n;
          if (this.scratchLen === FCGI_HEADER_LEN) this.startRecord();
          break;
        }
        case 'content': {
          const n = Math.min(this.contentLeft, chunk.length - off);
          if (STREAM_TYPES.has(this.type)) {
            this.emit({ kind: 'stream', type: this.type, requestId: this.requestId, data: chunk.subarray(off, off + n) });
          } else {
            chunk.copy(this.scratch, this.scratchLen, off, off + n);
            this.scratchLen += n;
          }
          this.contentLeft -= n;
          off += n;
          if (this.contentLeft === 0) this.finishContent();
          break;
        }
        case 'padding': {
          const n = Math.min(this.paddingLeft, chunk.length - off);
          this.paddingLeft -= n;
          off += n;
          if (this.paddingLeft === 0) this.state = 'header';
          break;
        }
        case 'failed':
          // Unreachable: fail() throws before the loop could see this state.
          throw new FastCgiError('QUICLB_FCGI_PROTOCOL', 'malformed FastCGI record stream');
      }
    }
  }

  private fail(message: string): never {
    this.state = 'failed';
    this.failure = new FastCgiError('QUICLB_FCGI_PROTOCOL', `malformed FastCGI record stream: ${message}`);
    throw this.failure;
  }

  private startRecord(): void {
    const h = this.scratch;
    if (h[0] !== FCGI_VERSION_1) this.fail(`version ${h[0]}, expected ${FCGI_VERSION_1}`);
    this.type = h[1];
    this.requestId = h.readUInt16BE(2);
    const contentLength = h.readUInt16BE(4);
    this.paddingLeft = h[6];
    this.scratchLen = 0;
    if (!this.accepted.has(this.type)) this.fail(`unexpected record type ${this.type}`);
    // Spec §3.3: request id 0 is for management records, which neither side of quiclb's use exchanges.
    if (this.requestId === 0) this.fail(`record type ${this.type} with request id 0`);
    const fixed = FIXED_LENGTH[this.type];
    if (fixed !== undefined && contentLength !== fixed) this.fail(`record type ${this.type} with content length ${contentLength}, expected ${fixed}`);
    this.recordLength = contentLength;
    this.contentLeft = contentLength;
    this.state = 'content';
    if (contentLength === 0) this.finishContent();
  }

  private finishContent(): void {
    const { type, requestId } = this;
    this.state = this.paddingLeft > 0 ? 'padding' : 'header';
    const body = this.scratch;
    this.scratchLen = 0;
    if (STREAM_TYPES.has(type)) {
      // Only the empty record announces the end of the stream; pieces of a non-empty one were emitted already.
      if (this.recordLength === 0) this.emit({ kind: 'stream', type, requestId, data: Buffer.alloc(0) });
    } else if (type === FCGI_END_REQUEST) {
      this.emit({ kind: 'end', requestId, appStatus: body.readUInt32BE(0), protocolStatus: body[4] });
    } else if (type === FCGI_BEGIN_REQUEST) {
      this.emit({ kind: 'begin', requestId, role: body.readUInt16BE(0), flags: body[2] });
    } else {
      this.emit({ kind: 'abort', requestId });
    }
  }

  private emit(e: RecordEvent): void {
    this.onEvent(e);
  }
}

/** Decodes a complete PARAMS byte stream (spec §3.4) into pairs; truncated input throws QUICLB_FCGI_PROTOCOL. */
export function decodeNameValuePairs(stream: Buffer): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  let off = 0;
  const length = (): number => {
    if (off >= stream.length) throw new FastCgiError('QUICLB_FCGI_PROTOCOL', 'malformed FastCGI name-value pair: truncated length');
    if (stream[off] < 128) return stream[off++];
    if (off + 4 > stream.length) throw new FastCgiError('QUICLB_FCGI_PROTOCOL', 'malformed FastCGI name-value pair: truncated length');
    const n = stream.readUInt32BE(off) & 0x7fffffff;
    off += 4;
    return n;
  };
  while (off < stream.length) {
    const nameLen = length();
    const valueLen = length();
    if (off + nameLen + valueLen > stream.length) throw new FastCgiError('QUICLB_FCGI_PROTOCOL', 'malformed FastCGI name-value pair: truncated data');
    const name = stream.toString('utf8', off, off + nameLen);
    off += nameLen;
    out.push([name, stream.toString('utf8', off, off + valueLen)]);
    off += valueLen;
  }
  return out;
}
