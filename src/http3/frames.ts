// HTTP/3 frames (RFC 9114 §7): an incremental reader over stream chunks and encoders for the frames a server sends.
// The reader is pull-based (push a chunk, call next() until null) so the connection can stop at the first frame
// that is not allowed, and DATA payloads come out as slices of the pushed chunk as they arrive (no copy, no wait
// for the whole frame).

import { H3_EXCESSIVE_LOAD, H3_FRAME_ERROR, H3_FRAME_UNEXPECTED, connectionError } from './errors.ts';
import { type SettingsList, encodeSettingsPayload, parseSettings } from './settings.ts';
import { VARINT_NEED_MORE, readVarint, varintLength, varintSize, writeVarint } from './varint.ts';

export const FRAME_DATA = 0x0;
export const FRAME_HEADERS = 0x1;
export const FRAME_CANCEL_PUSH = 0x3;
export const FRAME_SETTINGS = 0x4;
export const FRAME_PUSH_PROMISE = 0x5;
export const FRAME_GOAWAY = 0x7;
export const FRAME_MAX_PUSH_ID = 0xd;
export const FRAME_PRIORITY_UPDATE_REQUEST = 0xf0700; // RFC 9218 §7.2
export const FRAME_PRIORITY_UPDATE_PUSH = 0xf0701;

export type H3Frame =
  | { kind: 'data'; payload: Uint8Array; frameEnd: boolean }
  | { kind: 'headers'; payload: Uint8Array }
  | { kind: 'push_promise'; pushId: number; payload: Uint8Array }
  | { kind: 'settings'; settings: SettingsList }
  | { kind: 'goaway'; id: number }
  | { kind: 'max_push_id'; pushId: number }
  | { kind: 'cancel_push'; pushId: number }
  | { kind: 'priority_update'; elementId: number; push: boolean }
  /** A reserved or unknown type (RFC 9114 §9): reported so "first frame" rules can see it; its payload is skipped. */
  | { kind: 'unknown'; type: number };

/** Default cap on non-DATA frame payloads; the connection sizes it from its field-section limit. */
export const DEFAULT_MAX_FRAME_PAYLOAD = 65536;

const EMPTY = new Uint8Array(0);
const ST_HEADER = 0;
const ST_DATA = 1;
const ST_BUFFER = 2;
const ST_SKIP = 3;

function isKnownControlType(type: number): boolean {
  return (
    type === FRAME_HEADERS ||
    type === FRAME_CANCEL_PUSH ||
    type === FRAME_SETTINGS ||
    type === FRAME_PUSH_PROMISE ||
    type === FRAME_GOAWAY ||
    type === FRAME_MAX_PUSH_ID ||
    type === FRAME_PRIORITY_UPDATE_REQUEST ||
    type === FRAME_PRIORITY_UPDATE_PUSH
  );
}

/** RFC 9114 §7.2.8: frame types used by HTTP/2 that have no HTTP/3 meaning. */
function isHttp2OnlyType(type: number): boolean {
  return type === 0x2 || type === 0x6 || type === 0x8 || type === 0x9;
}

/** A payload that must be exactly one varint (GOAWAY, MAX_PUSH_ID, CANCEL_PUSH); §7.1: anything else is a FRAME_ERROR. */
function parseSingleVarint(payload: Uint8Array, what: string): number {
  const v = readVarint(payload, 0);
  if (v === VARINT_NEED_MORE || varintLength(payload[0]) !== payload.length) {
    throw connectionError(H3_FRAME_ERROR, `${what}: payload is not a single varint`);
  }
  return v;
}

function parseFrame(type: number, payload: Uint8Array): H3Frame {
  switch (type) {
    case FRAME_HEADERS:
      return { kind: 'headers', payload };
    case FRAME_SETTINGS:
      return { kind: 'settings', settings: parseSettings(payload) };
    case FRAME_GOAWAY:
      return { kind: 'goaway', id: parseSingleVarint(payload, 'GOAWAY') };
    case FRAME_MAX_PUSH_ID:
      return { kind: 'max_push_id', pushId: parseSingleVarint(payload, 'MAX_PUSH_ID') };
    case FRAME_CANCEL_PUSH:
      return { kind: 'cancel_push', pushId: parseSingleVarint(payload, 'CANCEL_PUSH') };
    case FRAME_PUSH_PROMISE: {
      const pushId = readVarint(payload, 0);
      if (pushId === VARINT_NEED_MORE) throw connectionError(H3_FRAME_ERROR, 'PUSH_PROMISE: truncated push id');
      return { kind: 'push_promise', pushId, payload: payload.subarray(varintLength(payload[0])) };
    }
    default: {
      // PRIORITY_UPDATE (RFC 9218 §7.2): the element id is checked, the priority field value is ignored.
      const elementId = readVarint(payload, 0);
      if (elementId === VARINT_NEED_MORE) throw connectionError(H3_FRAME_ERROR, 'PRIORITY_UPDATE: truncated id');
      return { kind: 'priority_update', elementId, push: type === FRAME_PRIORITY_UPDATE_PUSH };
    }
  }
}

/**
 * Incremental frame parser for one stream. Contract: push(chunk), then call next() until it returns null; at the
 * stream's FIN call finish(). Unknown and reserved frame types (RFC 9114 §9) are skipped without buffering.
 */
export class FrameReader {
  private readonly maxPayload: number;
  private chunk: Uint8Array = EMPTY;
  private pos = 0;
  // A frame header split across chunks is collected here: two varints, 16 bytes at most.
  private readonly hdr = new Uint8Array(16);
  private hdrLen = 0;
  private state = ST_HEADER;
  private type = 0;
  private remaining = 0;
  private payload: Uint8Array = EMPTY;
  private filled = 0;

  constructor(maxPayload: number = DEFAULT_MAX_FRAME_PAYLOAD) {
    this.maxPayload = maxPayload;
  }

  /** Adds stream bytes. The reader keeps a view of `chunk` until next() has returned null. */
  push(chunk: Uint8Array): void {
    if (this.pos < this.chunk.length) {
      // Not drained yet (the caller stopped early): keep the unread tail in front of the new bytes.
      const rest = this.chunk.subarray(this.pos);
      const joined = new Uint8Array(rest.length + chunk.length);
      joined.set(rest, 0);
      joined.set(chunk, rest.length);
      this.chunk = joined;
    } else {
      this.chunk = chunk;
    }
    this.pos = 0;
  }

  /** True at a frame boundary with no bytes held: the stream may end here. */
  get atFrameBoundary(): boolean {
    return this.state === ST_HEADER && this.hdrLen === 0 && this.pos >= this.chunk.length;
  }

  /** RFC 9114 §7.1: a stream that ends inside a frame is a connection error of type H3_FRAME_ERROR. */
  finish(): void {
    if (!this.atFrameBoundary) throw connectionError(H3_FRAME_ERROR, 'stream ended inside a frame');
  }

  /** Returns the next frame (or DATA slice), or null when more bytes are needed. Throws H3Error on bad input. */
  next(): H3Frame | null {
    for (;;) {
      switch (this.state) {
        case ST_HEADER: {
          if (!this.readHeader()) return null;
          const frame = this.startFrame();
          if (frame !== null) return frame;
          break;
        }
        case ST_DATA: {
          const avail = this.chunk.length - this.pos;
          if (avail === 0) return null;
          const n = avail < this.remaining ? avail : this.remaining;
          const slice = this.chunk.subarray(this.pos, this.pos + n);
          this.pos += n;
          this.remaining -= n;
          const frameEnd = this.remaining === 0;
          if (frameEnd) this.state = ST_HEADER;
          return { kind: 'data', payload: slice, frameEnd };
        }
        case ST_BUFFER: {
          const avail = this.chunk.length - this.pos;
          if (avail === 0) return null;
          const n = avail < this.remaining ? avail : this.remaining;
          this.payload.set(this.chunk.subarray(this.pos, this.pos + n), this.filled);
          this.pos += n;
          this.filled += n;
          this.remaining -= n;
          if (this.remaining > 0) return null;
          this.state = ST_HEADER;
          const payload = this.payload;
          this.payload = EMPTY;
          return parseFrame(this.type, payload);
        }
        default: {
          const avail = this.chunk.length - this.pos;
          if (avail === 0) return null;
          const n = avail < this.remaining ? avail : this.remaining;
          this.pos += n;
          this.remaining -= n;
          if (this.remaining === 0) this.state = ST_HEADER;
          break;
        }
      }
    }
  }

  /** Acts on a freshly read header: returns a frame when it is complete or unknown, else sets the payload state. */
  private startFrame(): H3Frame | null {
    const type = this.type;
    const len = this.remaining;
    if (type === FRAME_DATA) {
      if (len === 0) return { kind: 'data', payload: EMPTY, frameEnd: true };
      this.state = ST_DATA;
      return null;
    }
    if (isKnownControlType(type)) {
      if (len > this.maxPayload) {
        throw connectionError(H3_EXCESSIVE_LOAD, `frame 0x${type.toString(16)} of ${len} bytes exceeds ${this.maxPayload}`);
      }
      const avail = this.chunk.length - this.pos;
      if (avail >= len) {
        // Whole payload in this chunk: parse a view, no copy.
        const payload = this.chunk.subarray(this.pos, this.pos + len);
        this.pos += len;
        this.remaining = 0;
        return parseFrame(type, payload);
      }
      this.payload = new Uint8Array(len);
      this.filled = 0;
      this.state = ST_BUFFER;
      return null;
    }
    if (isHttp2OnlyType(type)) {
      throw connectionError(H3_FRAME_UNEXPECTED, `HTTP/2 frame type 0x${type.toString(16)} is not allowed in HTTP/3`);
    }
    if (len > 0) this.state = ST_SKIP;
    return { kind: 'unknown', type };
  }

  /** Reads type and length varints, collecting a header split across chunks. */
  private readHeader(): boolean {
    const buf = this.chunk;
    if (this.hdrLen === 0) {
      const end = buf.length;
      const p = this.pos;
      if (p >= end) return false;
      const type = readVarint(buf, p, end);
      if (type !== VARINT_NEED_MORE) {
        const lp = p + varintLength(buf[p]);
        const len = readVarint(buf, lp, end);
        if (len !== VARINT_NEED_MORE) {
          this.type = type;
          this.remaining = len;
          this.pos = lp + varintLength(buf[lp]);
          return true;
        }
      }
      this.hdr.set(buf.subarray(p, end), 0);
      this.hdrLen = end - p;
      this.pos = end;
      return false;
    }
    while (this.pos < buf.length) {
      this.hdr[this.hdrLen++] = buf[this.pos++];
      const type = readVarint(this.hdr, 0, this.hdrLen);
      if (type === VARINT_NEED_MORE) continue;
      const lp = varintLength(this.hdr[0]);
      const len = readVarint(this.hdr, lp, this.hdrLen);
      if (len === VARINT_NEED_MORE) continue;
      this.type = type;
      this.remaining = len;
      this.hdrLen = 0;
      return true;
    }
    return false;
  }
}

/** Type and length varints of a frame header. */
export function encodeFrameHeader(type: number, length: number): Uint8Array {
  const out = new Uint8Array(varintSize(type) + varintSize(length));
  writeVarint(out, writeVarint(out, 0, type), length);
  return out;
}

/** A whole frame in one buffer (small frames only: the payload is copied). */
export function encodeFrame(type: number, payload: Uint8Array): Uint8Array {
  const hl = varintSize(type) + varintSize(payload.length);
  const out = new Uint8Array(hl + payload.length);
  writeVarint(out, writeVarint(out, 0, type), payload.length);
  out.set(payload, hl);
  return out;
}

/** DATA frame header for a payload of `length` bytes; the payload is written after it, uncopied. */
export function encodeDataFrameHeader(length: number): Uint8Array {
  return encodeFrameHeader(FRAME_DATA, length);
}

export function encodeHeadersFrame(fieldSection: Uint8Array): Uint8Array {
  return encodeFrame(FRAME_HEADERS, fieldSection);
}

export function encodeSettingsFrame(settings: SettingsList): Uint8Array {
  return encodeFrame(FRAME_SETTINGS, encodeSettingsPayload(settings));
}

function encodeSingleVarintFrame(type: number, value: number): Uint8Array {
  const vl = varintSize(value);
  const out = new Uint8Array(varintSize(type) + 1 + vl);
  writeVarint(out, writeVarint(out, writeVarint(out, 0, type), vl), value);
  return out;
}

/** GOAWAY carries a stream id (server to client) or push id (client to server); RFC 9114 §5.2. */
export function encodeGoawayFrame(id: number): Uint8Array {
  return encodeSingleVarintFrame(FRAME_GOAWAY, id);
}

export function encodeMaxPushIdFrame(pushId: number): Uint8Array {
  return encodeSingleVarintFrame(FRAME_MAX_PUSH_ID, pushId);
}

export function encodeCancelPushFrame(pushId: number): Uint8Array {
  return encodeSingleVarintFrame(FRAME_CANCEL_PUSH, pushId);
}
