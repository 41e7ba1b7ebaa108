// One HTTP/3 request stream: what the frontend tracks about reading it, and the response side handed to the
// pipeline, which is this object itself (FrontResponse and its BodySink): no stream.Writable, no closures per
// request. Writes only queue bytes on the StreamWriter and mark the stream for the frontend, which moves
// everything a turn produced into quiche at once (src/quic/h3-frontend.ts).
import type { Logger } from 'pino';
import type { Duplex, Readable } from 'node:stream';
import type { BodySink, FrontResponse, HeaderList } from '../shared/http-types.ts';
import { dropRepeatedSingleValueFields } from '../shared/single-value-fields.ts';
import { encodeDataFrameHeader } from '../http3/frames.ts';
import type { FieldList } from '../http3/qpack/decoder.ts';
import { StreamWriter } from './stream-writer.ts';
import type { BodySource } from './h3-request-body.ts';
import { H3Tunnel } from './h3-tunnel.ts';

/** Response bytes queued per stream before write() asks the caller to wait for onDrain (about a stream window). */
export const MAX_BUFFERED_RESPONSE = 256 * 1024;

/**
 * quiche 0.18 never flushes a FIN written alone (stream_send with an empty buffer) once the stream's earlier
 * data has left: the response would hang unfinished (measured: backends whose chunked body ends in a later
 * TCP segment). The FIN rides on a zero-length DATA frame instead (RFC 9114 §7.2.1 allows one).
 */
export const EMPTY_DATA_FRAME = encodeDataFrameHeader(0);

/** What a request stream needs from its connection. */
export interface StreamHost {
  readonly logger: Logger;
  /** A HEADERS frame for a response (a copy the caller may keep); throws on an impossible status. */
  encodeResponseHeaders(streamId: number, status: number, headers: HeaderList): Uint8Array;
  /** The stream has new bytes to send: move them into quiche this turn. */
  flushSoon(s: H3RequestStream): void;
  /** The pipeline broke the response (FrontResponse.abort). */
  abortResponse(s: H3RequestStream, reason?: Error): void;
  /** The body Readable wants more: resume reading the stream. */
  resumeBody(s: H3RequestStream): void;
  /** A WebSocket was accepted (upgrade()): the client's bytes go to `tunnel` from now on. */
  startTunnel(s: H3RequestStream, tunnel: H3Tunnel): void;
}

export type H3ResponseErrorCode = 'QUICLB_H3_RESPOND_TWICE' | 'QUICLB_H3_NOT_UPGRADABLE' | 'QUICLB_H3_STREAM_GONE';

export class H3ResponseError extends Error {
  readonly code: H3ResponseErrorCode;
  constructor(code: H3ResponseErrorCode, message: string) {
    super(message);
    this.name = 'H3ResponseError';
    this.code = code;
  }
}

function runCallback(cb: () => void, logger: Logger, what: string): void {
  try {
    cb();
  } catch (err) {
    logger.error({ err }, `${what} callback threw`);
  }
}

export class H3RequestStream implements FrontResponse, BodySink, BodySource {
  readonly id: number;
  readonly writer: StreamWriter;
  private readonly host: StreamHost;

  // ---- reading (owned by the frontend) ----
  /** The validated header section, until dispatch. */
  fields: FieldList | undefined = undefined;
  /** The header section arrived (the read timeout then covers body pauses only). */
  headerDone = false;
  dispatched = false;
  /** Refused by the frontend itself (431, 501): never dispatched. */
  refused = false;
  /** Body chunks that arrived before dispatch (same read turn). */
  early: Uint8Array[] | undefined = undefined;
  /** The request body (RequestBody), or the WebSocket tunnel (H3Tunnel) once upgrade() accepted one. */
  body: Readable | null = null;
  /** An extended CONNECT for a WebSocket (RFC 9220): no read timeout; DATA waits in `early` until upgrade(). */
  websocket = false;
  /** upgrade() made this stream a WebSocket tunnel: no timeouts, and its end is no client reset. */
  tunnel = false;
  /** Not read from quiche because the body Readable is full. */
  paused = false;
  /** Not read from quiche because the header section waits for QPACK inserts. */
  readBlocked = false;
  /** The FIN was read from quiche. */
  finSeen = false;
  /** The request is complete (the HTTP/3 layer saw its end). */
  ended = false;
  /** Nothing more will be read: ended, stopped or reset. */
  readDone = false;
  /** The response is complete and the rest of the body is read and dropped. */
  discarding = false;
  discarded = 0;
  /** Last read progress (stream opened, bytes read, reading resumed): server.readTimeout counts from it. */
  readAt: number;
  /** Last write progress while bytes wait: server.writeTimeout counts from it. */
  writeAt = 0;
  /** In the frontend's list of streams with new output. */
  dirty = false;
  /** Forgotten by the frontend (complete, aborted, or the client went away): writes are dropped. */
  closed = false;

  // ---- response ----
  headersSent = false;
  isHead = false;
  /** HEAD, 204 and 304 carry no content (RFC 9110 §6.4.1): body writes are dropped. */
  private noBody = false;
  private ending = false;
  private clientAborted = false;
  private abortCbs: Array<() => void> | undefined = undefined;
  private drainCbs: Array<() => void> | undefined = undefined;

  constructor(id: number, host: StreamHost, now: number) {
    this.id = id;
    this.host = host;
    this.writer = new StreamWriter(id);
    this.readAt = now;
  }

  get finished(): boolean {
    return this.writer.finSent;
  }

  // ---- FrontResponse ----

  respond(status: number, headers: HeaderList): BodySink {
    if (this.headersSent) throw new H3ResponseError('QUICLB_H3_RESPOND_TWICE', `respond() called twice on HTTP/3 stream ${this.id}`);
    this.headersSent = true;
    if (this.closed) return this;
    let frame: Uint8Array;
    try {
      // A final response is 2xx-5xx (1xx go through inform()); anything else from a backend resets the stream.
      if (!(status >= 200 && status <= 599 && Number.isInteger(status))) throw new RangeError(`invalid final status ${status}`);
      frame = this.host.encodeResponseHeaders(this.id, status, dropRepeatedSingleValueFields(headers));
    } catch (err) {
      this.host.logger.warn({ err, streamId: this.id, status }, 'HTTP/3 response headers cannot be sent; resetting the stream');
      this.host.abortResponse(this, err as Error);
      return this;
    }
    this.noBody = this.isHead || status === 204 || status === 304;
    this.push(frame);
    return this;
  }

  inform(status: number, headers: HeaderList = []): void {
    // RFC 9114 §4.1: interim responses are HEADERS frames before the final one; 101 does not exist in HTTP/3.
    if (this.headersSent || this.closed || !(status >= 100 && status <= 199) || status === 101) return;
    try {
      this.push(this.host.encodeResponseHeaders(this.id, status, headers));
    } catch (err) {
      this.host.logger.warn({ err, streamId: this.id, status }, 'HTTP/3 interim response dropped');
    }
  }

  /**
   * Accepts a WebSocket (extended CONNECT, RFC 9220 §3): 200 with the backend's fields, then DATA frames
   * carry the WebSocket bytes both ways through the returned Duplex.
   */
  upgrade(headers: HeaderList): Duplex {
    if (this.headersSent || !this.websocket) {
      throw new H3ResponseError('QUICLB_H3_NOT_UPGRADABLE', `HTTP/3 stream ${this.id} is no WebSocket handshake waiting for its answer`);
    }
    if (this.closed) throw new H3ResponseError('QUICLB_H3_STREAM_GONE', `HTTP/3 stream ${this.id} is gone: the client went away`);
    this.respond(200, headers);
    if (this.closed) throw new H3ResponseError('QUICLB_H3_STREAM_GONE', `HTTP/3 stream ${this.id} was reset: its response headers could not be sent`);
    this.tunnel = true;
    const tunnel = new H3Tunnel(this);
    this.host.startTunnel(this, tunnel);
    return tunnel;
  }

  abort(reason?: Error): void {
    this.host.abortResponse(this, reason);
  }

  onClientAbort(cb: () => void): void {
    if (this.clientAborted) process.nextTick(runCallback, cb, this.host.logger, 'onClientAbort');
    else if (!this.closed) (this.abortCbs ??= []).push(cb);
  }

  // ---- BodySink ----

  write(chunk: Uint8Array): boolean {
    if (this.closed || this.noBody || this.ending || chunk.length === 0) return true;
    this.push(encodeDataFrameHeader(chunk.length));
    this.push(chunk);
    return this.writer.queued <= MAX_BUFFERED_RESPONSE;
  }

  end(chunk?: Uint8Array): void {
    if (chunk !== undefined) this.write(chunk);
    if (this.closed || this.ending) return;
    this.ending = true;
    if (!this.writer.hasPendingData) this.push(EMPTY_DATA_FRAME);
    this.writer.end();
    this.host.flushSoon(this);
  }

  onDrain(cb: () => void): void {
    if (this.closed || this.writer.queued <= MAX_BUFFERED_RESPONSE) process.nextTick(runCallback, cb, this.host.logger, 'onDrain');
    else (this.drainCbs ??= []).push(cb);
  }

  // ---- BodySource ----

  bodyWanted(): void {
    this.host.resumeBody(this);
  }

  // ---- for the frontend ----

  /** Bytes left quiche's queue for this stream: callers waiting in onDrain go on when it is short again. */
  drained(): void {
    if (this.drainCbs === undefined || this.writer.queued > MAX_BUFFERED_RESPONSE) return;
    const cbs = this.drainCbs;
    this.drainCbs = undefined;
    for (const cb of cbs) process.nextTick(runCallback, cb, this.host.logger, 'onDrain');
  }

  /**
   * The client went away before the response finished (reset, STOP_SENDING, connection closed, a timeout):
   * onClientAbort callbacks run first (the pipeline then knows why its body source fails), then an unfinished
   * request body errors.
   */
  clientGone(err: Error): void {
    if (this.clientAborted) return;
    this.clientAborted = true;
    this.drainCbs = undefined;
    const cbs = this.abortCbs;
    this.abortCbs = undefined;
    if (cbs !== undefined) for (const cb of cbs) runCallback(cb, this.host.logger, 'onClientAbort');
    if (this.body !== null && !this.ended) this.body.destroy(err);
  }

  private push(data: Uint8Array): void {
    if (this.writer.queued === 0) this.writeAt = performance.now();
    this.writer.push(data);
    this.host.flushSoon(this);
  }
}
