// Server side of an HTTP/3 connection (RFC 9114) over abstract QUIC streams, sans-IO: the QUIC layer hands in
// stream bytes and resets, and takes out bytes for our unidirectional streams plus events for request streams.

import {
  H3Error,
  H3_CLOSED_CRITICAL_STREAM,
  H3_EXCESSIVE_LOAD,
  H3_FRAME_UNEXPECTED,
  H3_ID_ERROR,
  H3_INTERNAL_ERROR,
  H3_MESSAGE_ERROR,
  H3_MISSING_SETTINGS,
  H3_REQUEST_INCOMPLETE,
  H3_REQUEST_REJECTED,
  H3_STREAM_CREATION_ERROR,
  connectionError,
  streamError,
} from './errors.ts';
import { FrameReader, type H3Frame, encodeDataFrameHeader, encodeGoawayFrame, encodeSettingsFrame } from './frames.ts';
import { type RequestRules, validateRequestHeaders, validateTrailers } from './message-validation.ts';
import { type FieldList, QpackDecoder, type UnblockedSection } from './qpack/decoder.ts';
import { PeerDecoderStreamReader } from './qpack/decoder-stream.ts';
import { FieldSectionWriter } from './qpack/encoder.ts';
import {
  type PeerSettings,
  SETTINGS_ENABLE_CONNECT_PROTOCOL,
  SETTINGS_MAX_FIELD_SECTION_SIZE,
  SETTINGS_QPACK_BLOCKED_STREAMS,
  SETTINGS_QPACK_MAX_TABLE_CAPACITY,
  defaultPeerSettings,
  toPeerSettings,
} from './settings.ts';
import { FinishedStreams, isClientBidi, isClientUni } from './stream-ids.ts';
import { VARINT_NEED_MORE, readVarint, varintLength } from './varint.ts';
import { CONNECTION_FIELDS } from '../shared/connection-fields.ts';

export interface H3Request {
  streamId: number;
  /** Field lines in arrival order, pseudo-headers first. */
  headers: Array<[string, string]>;
}

export interface H3ConnectionOptions {
  /** Default 16384, also advertised as SETTINGS_MAX_FIELD_SECTION_SIZE. */
  maxFieldSectionSize?: number;
  /** Default 4096 (SETTINGS_QPACK_MAX_TABLE_CAPACITY): browsers use the dynamic table when offered. */
  qpackMaxTableCapacity?: number;
  /** Default 16 (SETTINGS_QPACK_BLOCKED_STREAMS). */
  qpackBlockedStreams?: number;
  /** Most field lines in one request header section (default: only the size limit applies). */
  maxFieldLines?: number;
  /**
   * Send SETTINGS_ENABLE_CONNECT_PROTOCOL = 1 and accept extended CONNECT (RFC 9220: WebSocket over
   * HTTP/3). Default false: `:protocol` is then malformed.
   */
  enableConnectProtocol?: boolean;
}

export interface H3Events {
  /** A request whose header section passed validation. */
  onRequest(req: H3Request): void;
  /** Request body bytes: a view into the buffer given to receive(), valid during the call (copy to keep it). */
  onData(streamId: number, chunk: Uint8Array): void;
  onEnd(streamId: number, trailers?: Array<[string, string]>): void;
  /**
   * The caller resets the stream with `code` (RESET_STREAM + STOP_SENDING; STOP_SENDING only for a uni stream).
   * With `status` (431 for an oversized header section) the caller answers the request with that status
   * instead of resetting the response, and stops reading the rest of the request with `code`.
   */
  onStreamError(streamId: number, code: number, reason: string, status?: number): void;
  /** The caller closes the QUIC connection with this application error code. */
  onConnectionError(code: number, reason: string): void;
  onGoaway?(id: number): void;
}

export interface OutgoingChunk {
  streamId: number;
  data: Uint8Array;
  fin: boolean;
}

// Server-initiated unidirectional streams (RFC 9000 §2.1: ids 3, 7, 11 are the first three).
export const SERVER_CONTROL_STREAM_ID = 3;
export const SERVER_QPACK_ENCODER_STREAM_ID = 7;
export const SERVER_QPACK_DECODER_STREAM_ID = 11;

// Unidirectional stream types (RFC 9114 §6.2, RFC 9204 §4.2).
const UNI_CONTROL = 0x00;
const UNI_PUSH = 0x01;
const UNI_QPACK_ENCODER = 0x02;
const UNI_QPACK_DECODER = 0x03;

// Request stream phases.
const P_HEADERS = 0; // waiting for the header section
const P_BODY = 1; // headers delivered, DATA or trailers may follow
const P_TRAILERS = 2; // trailers received, only FIN may follow

/** Bytes held for a stream whose header section waits for QPACK inserts, before the stream is refused. */
const MAX_BLOCKED_STREAM_BUFFER = 1 << 20;

const EMPTY = new Uint8Array(0);


class RequestStream {
  readonly id: number;
  readonly reader: FrameReader;
  phase = P_HEADERS;
  /** Header or trailer section waiting in the QPACK decoder. */
  blocked = false;
  /** Chunks that arrived while blocked, and whether FIN came with them. */
  pending: Uint8Array[] = [];
  pendingBytes = 0;
  fin = false;
  contentLength = -1;
  received = 0;
  trailers: FieldList | undefined = undefined;

  constructor(id: number, maxFramePayload: number) {
    this.id = id;
    this.reader = new FrameReader(maxFramePayload);
  }
}

class UniStream {
  readonly id: number;
  /** -1 until the stream type varint is complete. */
  type = -1;
  readonly typeBytes = new Uint8Array(8);
  typeLen = 0;
  reader: FrameReader | null = null;
  settingsSeen = false;

  constructor(id: number) {
    this.id = id;
  }
}

/** Counters for metrics; every refusal is counted. */
export interface H3ConnectionStats {
  requests: number;
  streamErrors: number;
  blockedSections: number;
  blockedBufferOverflows: number;
  unknownUniStreams: number;
  rejectedAfterGoaway: number;
}

export class H3ServerConnection {
  readonly stats: H3ConnectionStats = {
    requests: 0,
    streamErrors: 0,
    blockedSections: 0,
    blockedBufferOverflows: 0,
    unknownUniStreams: 0,
    rejectedAfterGoaway: 0,
  };
  /** The client's SETTINGS (defaults until its control stream delivers them). */
  peerSettings: PeerSettings = defaultPeerSettings();

  private readonly events: H3Events;
  private readonly maxFieldSectionSize: number;
  private readonly qpackMaxTableCapacity: number;
  private readonly qpackBlockedStreams: number;
  private readonly maxFramePayload: number;
  private readonly requestRules: RequestRules;
  private readonly decoder: QpackDecoder;
  private readonly peerDecoderStream = new PeerDecoderStreamReader();
  private readonly writer = new FieldSectionWriter();
  private readonly requests = new Map<number, RequestStream>();
  private readonly unis = new Map<number, UniStream>();
  private readonly finishedRequests = new FinishedStreams(0);
  private readonly finishedUnis = new FinishedStreams(2);
  private outgoing: OutgoingChunk[] = [];
  private started = false;
  private closed = false;
  private peerControlId = -1;
  private peerEncoderId = -1;
  private peerDecoderId = -1;
  private maxRequestIdSeen = -4;
  private goawayId = -1;
  private peerGoawayId = -1;
  private peerMaxPushId = -1;

  constructor(events: H3Events, opts: H3ConnectionOptions = {}) {
    this.events = events;
    this.maxFieldSectionSize = opts.maxFieldSectionSize ?? 16384;
    this.qpackMaxTableCapacity = opts.qpackMaxTableCapacity ?? 4096;
    this.qpackBlockedStreams = opts.qpackBlockedStreams ?? 16;
    this.requestRules = { extendedConnect: opts.enableConnectProtocol === true };
    // An encoded section can exceed its decoded size (Huffman codes up to 30 bits per byte): allow 4x.
    this.maxFramePayload = Math.max(16384, 4 * this.maxFieldSectionSize);
    this.decoder = new QpackDecoder({
      maxTableCapacity: this.qpackMaxTableCapacity,
      maxBlockedStreams: this.qpackBlockedStreams,
      maxFieldSectionSize: this.maxFieldSectionSize,
      maxFieldLines: opts.maxFieldLines,
    });
  }

  /** True while the request stream's header section waits for QPACK inserts (RFC 9204 §2.1.2). */
  isBlocked(streamId: number): boolean {
    return this.requests.get(streamId)?.blocked === true;
  }

  /** True for a request stream this layer has finished with (ended, reset, or failed): later bytes are ignored. */
  isRequestFinished(streamId: number): boolean {
    return !this.requests.has(streamId) && this.finishedRequests.has(streamId);
  }

  /** Sizes of the per-stream tables (tests check that finished streams leave nothing behind). */
  stateCounts(): Record<string, number> {
    return {
      h3RequestStreams: this.requests.size,
      h3FinishedOutOfOrder: this.finishedRequests.outOfOrderCount,
      qpackBlockedSections: this.decoder.blockedStreamCount,
    };
  }

  /** True once a connection error was reported; later input is ignored. */
  get isClosed(): boolean {
    return this.closed;
  }

  takeOutgoing(): OutgoingChunk[] {
    const out = this.outgoing;
    this.outgoing = [];
    return out;
  }

  /** Queues our control stream (type + SETTINGS) and the QPACK stream type bytes (RFC 9114 §6.2.1, RFC 9204 §4.2). */
  start(): void {
    if (this.started) return;
    this.started = true;
    const list: Array<[number, number]> = [
      [SETTINGS_QPACK_MAX_TABLE_CAPACITY, this.qpackMaxTableCapacity],
      [SETTINGS_MAX_FIELD_SECTION_SIZE, this.maxFieldSectionSize],
      [SETTINGS_QPACK_BLOCKED_STREAMS, this.qpackBlockedStreams],
    ];
    // RFC 9220 §3: extended CONNECT (WebSocket) is offered only through this setting.
    if (this.requestRules.extendedConnect) list.push([SETTINGS_ENABLE_CONNECT_PROTOCOL, 1]);
    const settings = encodeSettingsFrame(list);
    const control = new Uint8Array(1 + settings.length);
    control[0] = UNI_CONTROL;
    control.set(settings, 1);
    this.outgoing.push({ streamId: SERVER_CONTROL_STREAM_ID, data: control, fin: false });
    this.outgoing.push({ streamId: SERVER_QPACK_ENCODER_STREAM_ID, data: Uint8Array.of(UNI_QPACK_ENCODER), fin: false });
    this.outgoing.push({ streamId: SERVER_QPACK_DECODER_STREAM_ID, data: Uint8Array.of(UNI_QPACK_DECODER), fin: false });
  }

  receive(streamId: number, data: Uint8Array, fin: boolean): void {
    if (this.closed) return;
    if (!this.started) this.start();
    try {
      if (isClientBidi(streamId)) this.receiveRequest(streamId, data, fin);
      else if (isClientUni(streamId)) this.receiveUni(streamId, data, fin);
      else throw connectionError(H3_STREAM_CREATION_ERROR, `peer data on server-initiated stream ${streamId}`);
    } catch (err) {
      this.fail(err, streamId);
    }
    this.flushDecoderStream();
  }

  /** The peer reset `streamId` (RESET_STREAM). */
  streamReset(streamId: number, code: number): void {
    if (this.closed) return;
    if (isClientBidi(streamId)) {
      if (!this.isRequestFinished(streamId)) this.finishRequest(streamId, true);
    } else if (isClientUni(streamId)) {
      if (streamId === this.peerControlId || streamId === this.peerEncoderId || streamId === this.peerDecoderId) {
        this.closeConnection(H3_CLOSED_CRITICAL_STREAM, `critical stream ${streamId} reset (code 0x${code.toString(16)})`);
        return;
      }
      this.unis.delete(streamId);
      this.finishedUnis.add(streamId);
    }
    this.flushDecoderStream();
  }

  /** HEADERS frame for a response (`headers` without pseudo-headers; names are lowercased, hop-by-hop dropped). */
  encodeResponseHeaders(streamId: number, status: number, headers: Array<[string, string]>): Uint8Array {
    if (!Number.isInteger(status) || status < 100 || status > 999) {
      throw streamError(H3_INTERNAL_ERROR, `stream ${streamId}: invalid status ${status}`);
    }
    const w = this.writer;
    w.begin();
    w.add(':status', String(status));
    this.addRegularFields(headers);
    return w.finishHeadersFrame();
  }

  /** DATA frame as [header, payload]; the payload is not copied. */
  encodeData(chunk: Uint8Array): Uint8Array[] {
    return [encodeDataFrameHeader(chunk.length), chunk];
  }

  /** HEADERS frame carrying trailers (RFC 9114 §4.1). */
  encodeTrailers(_streamId: number, trailers: Array<[string, string]>): Uint8Array {
    this.writer.begin();
    this.addRegularFields(trailers);
    return this.writer.finishHeadersFrame();
  }

  /**
   * RFC 9114 §5.2: GOAWAY with the first request stream id we have not processed; requests at or above it are
   * refused with H3_REQUEST_REJECTED so the client can retry them elsewhere.
   */
  goaway(): void {
    if (this.closed) return;
    if (!this.started) this.start();
    const id = this.maxRequestIdSeen + 4;
    // A later GOAWAY must not raise the id; ours can only repeat it since refused streams do not move it.
    if (this.goawayId !== -1 && id > this.goawayId) return;
    this.goawayId = id;
    this.outgoing.push({ streamId: SERVER_CONTROL_STREAM_ID, data: encodeGoawayFrame(id), fin: false });
  }

  // ---- request streams ----

  private receiveRequest(id: number, data: Uint8Array, fin: boolean): void {
    let st = this.requests.get(id);
    if (st === undefined) {
      if (this.finishedRequests.has(id)) return;
      if (this.goawayId !== -1 && id >= this.goawayId) {
        this.stats.rejectedAfterGoaway++;
        this.finishedRequests.add(id);
        this.events.onStreamError(id, H3_REQUEST_REJECTED, 'request after GOAWAY');
        return;
      }
      st = new RequestStream(id, this.maxFramePayload);
      this.requests.set(id, st);
      if (id > this.maxRequestIdSeen) this.maxRequestIdSeen = id;
    }
    if (fin) st.fin = true;
    if (st.blocked) {
      if (data.length === 0) return;
      st.pendingBytes += data.length;
      if (st.pendingBytes > MAX_BLOCKED_STREAM_BUFFER) {
        this.stats.blockedBufferOverflows++;
        throw streamError(H3_EXCESSIVE_LOAD, 'too much data behind a blocked header section');
      }
      // Copied: the caller may reuse its buffer once receive() returns.
      st.pending.push(data.slice());
      return;
    }
    if (data.length > 0) st.reader.push(data);
    this.drain(st);
  }

  /** Processes buffered frames until the stream blocks, ends or runs out of bytes. */
  private drain(st: RequestStream): void {
    for (;;) {
      let f: H3Frame | null;
      while (!st.blocked && (f = st.reader.next()) !== null) {
        this.requestFrame(st, f);
        if (this.requests.get(st.id) !== st) return; // failed or finished inside the handler
      }
      if (st.blocked) return;
      const next = st.pending.shift();
      if (next !== undefined) {
        st.pendingBytes -= next.length;
        st.reader.push(next);
        continue;
      }
      if (st.fin) this.endRequest(st);
      return;
    }
  }

  private requestFrame(st: RequestStream, f: H3Frame): void {
    switch (f.kind) {
      case 'data':
        // RFC 9114 §4.1: DATA before HEADERS, or after trailers, is an invalid frame sequence.
        if (st.phase !== P_BODY) throw connectionError(H3_FRAME_UNEXPECTED, 'DATA outside a message body');
        if (f.payload.length === 0) return;
        st.received += f.payload.length;
        if (st.contentLength >= 0 && st.received > st.contentLength) {
          throw streamError(H3_MESSAGE_ERROR, 'body longer than content-length');
        }
        this.events.onData(st.id, f.payload);
        return;
      case 'headers': {
        if (st.phase === P_TRAILERS) throw connectionError(H3_FRAME_UNEXPECTED, 'HEADERS after trailers');
        const fields = this.decoder.decodeFieldSection(st.id, f.payload);
        if (fields === null) {
          st.blocked = true;
          this.stats.blockedSections++;
          return;
        }
        this.deliverSection(st, fields);
        return;
      }
      case 'unknown':
        return; // RFC 9114 §9: unknown frame types are ignored
      default:
        // SETTINGS, GOAWAY, MAX_PUSH_ID, CANCEL_PUSH, PUSH_PROMISE (from a client), PRIORITY_UPDATE (RFC 9218 §7.1).
        throw connectionError(H3_FRAME_UNEXPECTED, `${f.kind} frame on request stream ${st.id}`);
    }
  }

  private deliverSection(st: RequestStream, fields: FieldList): void {
    if (st.phase === P_HEADERS) {
      const info = validateRequestHeaders(fields, this.requestRules);
      st.contentLength = info.contentLength;
      st.phase = P_BODY;
      this.stats.requests++;
      this.events.onRequest({ streamId: st.id, headers: fields });
    } else {
      validateTrailers(fields);
      st.trailers = fields;
      st.phase = P_TRAILERS;
    }
  }

  private endRequest(st: RequestStream): void {
    st.reader.finish();
    if (st.phase === P_HEADERS) throw streamError(H3_REQUEST_INCOMPLETE, 'stream ended without a header section');
    // RFC 9114 §4.1.2: a body whose length differs from content-length is malformed.
    if (st.contentLength >= 0 && st.received !== st.contentLength) {
      throw streamError(H3_MESSAGE_ERROR, `body of ${st.received} bytes, content-length ${st.contentLength}`);
    }
    this.finishRequest(st.id, false);
    this.events.onEnd(st.id, st.trailers);
  }

  /** Forgets a request stream; `cancel` tells the QPACK encoder its sections will not be acknowledged. */
  private finishRequest(id: number, cancel: boolean): void {
    this.requests.delete(id);
    this.finishedRequests.add(id);
    // RFC 9204 §2.2.2.2: harmless when every section was acknowledged, required when one was not.
    if (cancel) this.decoder.cancelStream(id);
  }

  private onUnblocked(sections: UnblockedSection[]): void {
    for (const s of sections) {
      const st = this.requests.get(s.streamId);
      if (st === undefined) continue;
      try {
        if (s.error !== null) throw s.error;
        st.blocked = false;
        this.deliverSection(st, s.headers as FieldList);
        this.drain(st);
      } catch (err) {
        this.fail(err, s.streamId);
        if (this.closed) return;
      }
    }
  }

  // ---- unidirectional streams ----

  private receiveUni(id: number, data: Uint8Array, fin: boolean): void {
    if (this.finishedUnis.has(id)) return;
    let u = this.unis.get(id);
    if (u === undefined) {
      u = new UniStream(id);
      this.unis.set(id, u);
    }
    let rest = data;
    if (u.type === -1) {
      let i = 0;
      while (u.type === -1 && i < data.length) {
        u.typeBytes[u.typeLen++] = data[i++];
        const t = readVarint(u.typeBytes, 0, u.typeLen);
        if (t !== VARINT_NEED_MORE && u.typeLen === varintLength(u.typeBytes[0])) this.openUni(u, t);
      }
      if (u.type === -1) {
        // RFC 9114 §6.2: a stream may close before its type arrives; that is not an error.
        if (fin) this.dropUni(u);
        return;
      }
      if (!this.unis.has(id)) return; // unknown type: ignored
      rest = data.subarray(i);
    }
    switch (u.type) {
      case UNI_CONTROL:
        this.controlData(u, rest);
        break;
      case UNI_QPACK_ENCODER:
        if (rest.length > 0) this.onUnblocked(this.decoder.feedEncoderStream(rest));
        break;
      default:
        if (rest.length > 0) this.peerDecoderStream.feed(rest);
        break;
    }
    // RFC 9114 §6.2.1, RFC 9204 §4.2: closing a control or QPACK stream is a connection error.
    if (fin && !this.closed) throw connectionError(H3_CLOSED_CRITICAL_STREAM, `critical stream ${id} closed`);
  }

  private openUni(u: UniStream, type: number): void {
    switch (type) {
      case UNI_CONTROL:
        if (this.peerControlId !== -1) throw connectionError(H3_STREAM_CREATION_ERROR, 'second control stream');
        this.peerControlId = u.id;
        u.reader = new FrameReader(this.maxFramePayload);
        break;
      case UNI_QPACK_ENCODER:
        if (this.peerEncoderId !== -1) throw connectionError(H3_STREAM_CREATION_ERROR, 'second QPACK encoder stream');
        this.peerEncoderId = u.id;
        break;
      case UNI_QPACK_DECODER:
        if (this.peerDecoderId !== -1) throw connectionError(H3_STREAM_CREATION_ERROR, 'second QPACK decoder stream');
        this.peerDecoderId = u.id;
        break;
      case UNI_PUSH:
        // RFC 9114 §6.2.2: only servers push.
        throw connectionError(H3_STREAM_CREATION_ERROR, 'push stream from a client');
      default:
        // RFC 9114 §6.2: unknown (including reserved) stream types are read no further; the caller sends
        // STOP_SENDING with H3_STREAM_CREATION_ERROR.
        this.stats.unknownUniStreams++;
        this.dropUni(u);
        this.events.onStreamError(u.id, H3_STREAM_CREATION_ERROR, `unknown stream type 0x${type.toString(16)}`);
        break;
    }
    u.type = type;
  }

  private dropUni(u: UniStream): void {
    this.unis.delete(u.id);
    this.finishedUnis.add(u.id);
  }

  private controlData(u: UniStream, data: Uint8Array): void {
    const reader = u.reader as FrameReader;
    if (data.length > 0) reader.push(data);
    let f: H3Frame | null;
    while ((f = reader.next()) !== null) {
      if (!u.settingsSeen) {
        // RFC 9114 §6.2.1: SETTINGS is the first frame of the control stream.
        if (f.kind !== 'settings') throw connectionError(H3_MISSING_SETTINGS, `control stream began with ${f.kind}`);
        u.settingsSeen = true;
        this.peerSettings = toPeerSettings(f.settings);
        continue;
      }
      this.controlFrame(f);
    }
  }

  private controlFrame(f: H3Frame): void {
    switch (f.kind) {
      case 'goaway':
        // RFC 9114 §5.2: a client's GOAWAY carries a push id and must not increase.
        if (this.peerGoawayId !== -1 && f.id > this.peerGoawayId) {
          throw connectionError(H3_ID_ERROR, 'GOAWAY id increased');
        }
        this.peerGoawayId = f.id;
        this.events.onGoaway?.(f.id);
        return;
      case 'max_push_id':
        // RFC 9114 §7.2.7: MAX_PUSH_ID must not decrease.
        if (f.pushId < this.peerMaxPushId) throw connectionError(H3_ID_ERROR, 'MAX_PUSH_ID decreased');
        this.peerMaxPushId = f.pushId;
        return;
      case 'cancel_push':
        // RFC 9114 §7.2.3: we never push, so any id beyond MAX_PUSH_ID is invalid; others need no action.
        if (f.pushId > this.peerMaxPushId) throw connectionError(H3_ID_ERROR, 'CANCEL_PUSH beyond MAX_PUSH_ID');
        return;
      case 'priority_update':
        // RFC 9218 §7: parsed and ignored (we do not schedule by priority); push ids must be within MAX_PUSH_ID.
        if (f.push && f.elementId > this.peerMaxPushId) throw connectionError(H3_ID_ERROR, 'PRIORITY_UPDATE push id');
        if (!f.push && !isClientBidi(f.elementId)) throw connectionError(H3_ID_ERROR, 'PRIORITY_UPDATE stream id');
        return;
      case 'unknown':
        return;
      case 'settings':
        throw connectionError(H3_FRAME_UNEXPECTED, 'second SETTINGS frame');
      default:
        throw connectionError(H3_FRAME_UNEXPECTED, `${f.kind} frame on the control stream`);
    }
  }

  // ---- errors and output ----

  private fail(err: unknown, streamId: number): void {
    if (!(err instanceof H3Error)) throw err;
    if (err.scope === 'connection') {
      this.closeConnection(err.code, err.message);
      return;
    }
    this.stats.streamErrors++;
    if (isClientBidi(streamId)) {
      if (this.isRequestFinished(streamId)) return;
      this.finishRequest(streamId, true);
    } else {
      this.unis.delete(streamId);
      this.finishedUnis.add(streamId);
    }
    this.events.onStreamError(streamId, err.code, err.message, err.status);
  }

  private closeConnection(code: number, reason: string): void {
    if (this.closed) return;
    this.closed = true;
    this.requests.clear();
    this.events.onConnectionError(code, reason);
  }

  private flushDecoderStream(): void {
    if (this.closed) return;
    const bytes = this.decoder.takeDecoderStreamBytes();
    if (bytes !== null) this.outgoing.push({ streamId: SERVER_QPACK_DECODER_STREAM_ID, data: bytes, fin: false });
  }

  private addRegularFields(fields: Array<[string, string]>): void {
    const w = this.writer;
    for (let i = 0; i < fields.length; i++) {
      const name = fields[i][0].toLowerCase();
      if (name.length === 0 || name.charCodeAt(0) === 0x3a || CONNECTION_FIELDS.has(name)) continue;
      w.add(name, fields[i][1]);
    }
  }
}
