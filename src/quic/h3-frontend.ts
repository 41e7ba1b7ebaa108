// HTTP/3 on one QUIC connection: binds the sans-IO H3ServerConnection (src/http3/connection.ts) to quiche
// streams and turns each request into a FrontRequest/FrontResponse for the proxy (src/proxy/types.ts).
// Backpressure both ways: a request stream is not read from quiche while its body Readable is full
// (quiche's flow control then slows the client, RFC 9000 §4), and a response Writable holds its callback
// while more than about one stream window waits for quiche stream capacity. A request body nobody wants
// any more (the response is complete) is read and dropped up to DISCARD_LIMIT rather than stopped.
import { Readable, Writable } from 'node:stream';
import type { Logger } from 'pino';
import type { BodySink, FrontRequest, FrontResponse, HeaderList, RequestHandler } from '../proxy/types.ts';
import { writableSink } from '../shared/writable-sink.ts';
import { H3ServerConnection, type H3Request } from '../http3/connection.ts';
import { H3_INTERNAL_ERROR, H3_MESSAGE_ERROR, H3_NO_ERROR, H3_REQUEST_CANCELLED } from '../http3/errors.ts';
import type { QuicApp, QuicConn } from './connection.ts';
import { SHUTDOWN_READ, SHUTDOWN_WRITE } from './quiche.ts';
import { StreamWriter } from './stream-writer.ts';
import { quicErrorCode, toQuicError } from './errors.ts';
import { encodeDataFrameHeader } from '../http3/frames.ts';

const EMPTY_DATA_FRAME = encodeDataFrameHeader(0);

/** Response bytes buffered per stream before the Writable waits (about one default stream window). */
const MAX_BUFFERED_RESPONSE = 256 * 1024;
/** Request body bytes the Readable holds before we stop reading the quiche stream. */
const BODY_HIGH_WATER = 64 * 1024;
/** Request body bytes read and dropped after an early response before the stream is stopped instead. */
const DISCARD_LIMIT = 4 * 1024 * 1024;

interface RequestState {
  id: number;
  writer: StreamWriter;
  head: H3Request | undefined;
  dispatched: boolean;
  early: Uint8Array[];
  ended: boolean;
  body: Readable | null;
  paused: boolean;
  headersSent: boolean;
  writeCb: ((err?: Error | null) => void) | undefined;
  finalCb: ((err?: Error | null) => void) | undefined;
  aborted: boolean;
  abortCbs: Array<() => void>;
  readDone: boolean;
  /** The response is complete; the rest of the request body is read and dropped (see finishRequestBody). */
  discarding: boolean;
  discarded: number;
}

export interface H3FrontendOptions {
  qc: QuicConn;
  shard: number;
  localPort: number;
  /** Scratch buffer shared by the shard for streamRecv (copied out before use). */
  readBuf: Buffer;
  logger: Logger;
  onRequest: RequestHandler;
  /** Ask the endpoint to service and flush this connection soon. */
  wake: () => void;
  /**
   * Request streams this connection may stop reading (STOP_SENDING) before it sends GOAWAY: each one can
   * cost connection flow-control credit for good (see stopReading). At least 1.
   */
  stopBudget: number;
}

export class H3Frontend implements QuicApp {
  private readonly qc: QuicConn;
  private readonly opts: H3FrontendOptions;
  private readonly h3: H3ServerConnection;
  private readonly requests = new Map<number, RequestState>();
  /** Server-initiated unidirectional streams (control, QPACK encoder/decoder). */
  private readonly uni = new Map<number, StreamWriter>();
  private readonly blocked = new Set<StreamWriter>();
  private readonly toDispatch: RequestState[] = [];
  private goingAway = false;
  private stops = 0;
  private dead = false;

  constructor(opts: H3FrontendOptions) {
    this.opts = opts;
    this.qc = opts.qc;
    this.h3 = new H3ServerConnection({
      onRequest: (req) => this.onH3Request(req),
      onData: (id, chunk) => this.onH3Data(id, chunk),
      onEnd: (id) => this.onH3End(id),
      onStreamError: (id, code, reason) => this.onH3StreamError(id, code, reason),
      onConnectionError: (code, reason) => this.closeConnection(code, reason),
    });
    this.h3.start();
    this.pumpUni();
  }

  // ---- QuicApp -------------------------------------------------------------------------------

  service(): void {
    if (this.dead) return;
    const conn = this.qc.conn;
    if (conn.isReadable()) {
      for (const id of conn.readable()) {
        this.readStream(id);
        if (this.dead) return;
      }
    }
    this.dispatch();
    if (this.blocked.size > 0) {
      for (const w of [...this.blocked]) {
        this.blocked.delete(w);
        this.drain(w);
      }
    }
    this.pumpUni();
  }

  goaway(): void {
    if (this.goingAway || this.dead) return;
    this.goingAway = true;
    this.h3.goaway();
    this.pumpUni();
  }

  inFlight(): number {
    return this.requests.size;
  }

  closed(): void {
    if (this.dead) return;
    this.dead = true;
    for (const s of this.requests.values()) this.clientGone(s, new Error('QUIC connection closed'));
    this.requests.clear();
  }

  // ---- reading -------------------------------------------------------------------------------

  private readStream(id: number): void {
    const s = this.requests.get(id);
    if (s && s.paused) return;
    const conn = this.qc.conn;
    const buf = this.opts.readBuf;
    for (;;) {
      let r: [number, boolean] | null;
      try {
        r = conn.streamRecv(id, buf);
      } catch (err) {
        const code = quicErrorCode(err);
        if (code === 'QUIC_STREAM_RESET') {
          const e = toQuicError(err);
          this.h3.streamReset(id, e.value ?? 0);
          const rs = this.requests.get(id);
          if (rs) this.clientGone(rs, new Error(`client reset the stream (code ${e.value})`));
        }
        return;
      }
      if (r === null) return;
      const [n, fin] = r;
      try {
        this.h3.receive(id, Buffer.from(buf.subarray(0, n)), fin);
      } catch (err) {
        // H3ServerConnection reports violations through events; anything thrown is our bug.
        this.opts.logger.error({ err, streamId: id }, 'HTTP/3 receive failed');
        this.closeConnection(H3_INTERNAL_ERROR, 'internal error');
        return;
      }
      if (fin || this.dead) return;
      const after = this.requests.get(id);
      if (after && after.paused) return;
    }
  }

  private onH3Request(req: H3Request): void {
    const s: RequestState = {
      id: req.streamId,
      writer: new StreamWriter(req.streamId),
      head: req,
      dispatched: false,
      early: [],
      ended: false,
      body: null,
      paused: false,
      headersSent: false,
      writeCb: undefined,
      finalCb: undefined,
      aborted: false,
      abortCbs: [],
      readDone: false,
      discarding: false,
      discarded: 0,
    };
    this.requests.set(req.streamId, s);
    // Dispatch after this read turn, so a HEADERS frame that came with FIN gets a null body.
    this.toDispatch.push(s);
  }

  private onH3Data(id: number, chunk: Uint8Array): void {
    const s = this.requests.get(id);
    if (!s || s.aborted) return;
    if (s.discarding) {
      s.discarded += chunk.length;
      if (s.discarded > DISCARD_LIMIT) this.stopDiscarding(s);
      return;
    }
    if (!s.dispatched) {
      s.early.push(chunk);
      return;
    }
    if (s.body && !s.body.push(chunk)) s.paused = true;
  }

  private onH3End(id: number): void {
    const s = this.requests.get(id);
    if (!s) return;
    s.ended = true;
    s.readDone = true;
    if (s.dispatched && s.body) s.body.push(null);
    this.maybeDone(s);
  }

  private onH3StreamError(id: number, code: number, reason: string): void {
    const conn = this.qc.conn;
    this.stopReading(id, code);
    try {
      conn.streamShutdown(id, SHUTDOWN_WRITE, code);
    } catch {
      // idem
    }
    const s = this.requests.get(id);
    if (s) this.clientGone(s, new Error(`HTTP/3 stream error ${code}: ${reason}`));
    this.opts.wake();
  }

  private dispatch(): void {
    while (this.toDispatch.length > 0) {
      const s = this.toDispatch.shift() as RequestState;
      if (s.aborted || this.dead) continue;
      const head = s.head as H3Request;
      s.head = undefined;
      let method = '';
      let path = '';
      let authority = '';
      const headers: HeaderList = [];
      for (const [name, value] of head.headers) {
        if (name.charCodeAt(0) === 0x3a /* ':' */) {
          if (name === ':method') method = value;
          else if (name === ':path') path = value;
          else if (name === ':authority') authority = value;
        } else {
          headers.push([name, value]);
          if (name === 'host' && !authority) authority = value;
        }
      }
      if (!method || (!path && method !== 'CONNECT')) {
        // RFC 9114 §4.3.1: a request without :method/:path is malformed.
        this.onH3StreamError(s.id, H3_MESSAGE_ERROR, 'missing pseudo-header');
        continue;
      }
      s.dispatched = true;
      if (!(s.ended && s.early.length === 0)) {
        const body = new Readable({
          highWaterMark: BODY_HIGH_WATER,
          read: () => {
            if (s.paused) {
              s.paused = false;
              this.opts.wake();
            }
          },
        });
        s.body = body;
        for (const c of s.early) if (!body.push(c)) s.paused = true;
        if (s.ended) body.push(null);
      }
      s.early = [];
      const req: FrontRequest = {
        protocol: 'HTTP/3',
        method,
        scheme: 'https',
        authority,
        path,
        headers,
        body: s.body,
        remoteAddress: this.qc.peer.host,
        remotePort: this.qc.peer.port,
        localPort: this.opts.localPort,
        connectionKey: this.qc.key,
        shard: this.opts.shard,
      };
      try {
        this.opts.onRequest(req, this.frontResponse(s));
      } catch (err) {
        this.opts.logger.error({ err, streamId: s.id }, 'request handler threw');
        this.abortStream(s);
      }
    }
  }

  // ---- writing -------------------------------------------------------------------------------

  private frontResponse(s: RequestState): FrontResponse {
    return {
      respond: (status, headers) => writableSink(this.respond(s, status, headers)),
      inform: () => undefined,
      abort: () => this.abortStream(s),
      get headersSent() {
        return s.headersSent;
      },
      get finished() {
        return s.writer.finSent;
      },
      onClientAbort: (cb) => {
        if (s.aborted) queueMicrotask(cb);
        else s.abortCbs.push(cb);
      },
    };
  }

  private respond(s: RequestState, status: number, headers: HeaderList): Writable {
    if (s.headersSent) throw new Error('respond() called twice on one HTTP/3 stream');
    s.headersSent = true;
    if (!s.aborted && !this.dead) {
      // Copied: H3ServerConnection may hand out a view of its reusable encoder buffer (measured: the
      // bytes of a queued HEADERS frame changed when the next response was encoded).
      s.writer.push(new Uint8Array(this.h3.encodeResponseHeaders(s.id, status, headers)));
      this.pumpUni();
      this.drain(s.writer);
      this.opts.wake();
    }
    return new Writable({
      highWaterMark: 64 * 1024,
      write: (chunk: Buffer, _enc, cb) => {
        if (s.aborted || this.dead) return cb(new Error('HTTP/3 stream aborted'));
        for (const frame of this.h3.encodeData(chunk)) s.writer.push(frame);
        this.drain(s.writer);
        this.opts.wake();
        if (s.writer.queued <= MAX_BUFFERED_RESPONSE) cb();
        else s.writeCb = cb;
      },
      final: (cb) => {
        if (s.aborted || this.dead) return cb(new Error('HTTP/3 stream aborted'));
        // quiche 0.18 never flushes a FIN written alone (stream_send with an empty buffer) once the
        // stream's earlier data has left: the response would hang unfinished (measured: backends whose
        // chunked body ends in a later TCP segment). Carry the FIN on a zero-length DATA frame instead
        // (RFC 9114 §7.2.1 allows an empty DATA frame).
        if (!s.writer.hasPendingData) s.writer.push(EMPTY_DATA_FRAME);
        s.writer.end();
        s.finalCb = cb;
        this.drain(s.writer);
        this.opts.wake();
      },
      destroy: (err, cb) => {
        if (err && !s.writer.finSent) this.abortStream(s);
        cb(err);
      },
    });
  }

  private drain(w: StreamWriter): void {
    if (this.dead) return;
    const result = w.drain(this.qc.conn);
    const s = this.requests.get(w.streamId);
    if (result === 'blocked') {
      this.blocked.add(w);
    } else if (result === 'failed') {
      if (s) {
        this.clientGone(s, w.error ?? new Error('stream closed'));
      } else if (this.uni.get(w.streamId) === w) {
        this.closeConnection(H3_INTERNAL_ERROR, 'cannot write a control stream');
      }
      return;
    }
    if (!s) return;
    if (s.writeCb && w.queued <= MAX_BUFFERED_RESPONSE) {
      const cb = s.writeCb;
      s.writeCb = undefined;
      process.nextTick(cb);
    }
    if (s.finalCb && w.finSent) {
      const cb = s.finalCb;
      s.finalCb = undefined;
      process.nextTick(cb);
      this.maybeDone(s);
    }
  }

  private pumpUni(): void {
    if (this.dead) return;
    for (const { streamId, data, fin } of this.h3.takeOutgoing()) {
      let w = this.uni.get(streamId);
      if (!w) {
        w = new StreamWriter(streamId);
        this.uni.set(streamId, w);
      }
      w.push(new Uint8Array(data)); // copied, as for HEADERS above
      if (fin) w.end();
      this.drain(w);
    }
  }

  private abortStream(s: RequestState): void {
    if (s.aborted) return;
    s.aborted = true;
    const conn = this.qc.conn;
    if (!this.dead) {
      // RFC 9114 §4.1.1: an aborted response is a reset stream with H3_INTERNAL_ERROR (or CANCELLED).
      try {
        conn.streamShutdown(s.id, SHUTDOWN_WRITE, H3_INTERNAL_ERROR);
      } catch {
        // already finished
      }
      if (!s.readDone) this.stopReading(s.id, H3_REQUEST_CANCELLED);
      this.opts.wake();
    }
    this.blocked.delete(s.writer);
    s.body?.destroy();
    this.requests.delete(s.id);
  }

  /** The client reset the stream, stopped reading, or the connection went away. */
  private clientGone(s: RequestState, err: Error): void {
    if (s.aborted) return;
    s.aborted = true;
    this.blocked.delete(s.writer);
    this.requests.delete(s.id);
    if (s.body && !s.readDone) s.body.destroy(err);
    const cbs = s.abortCbs;
    s.abortCbs = [];
    for (const cb of cbs) {
      try {
        cb();
      } catch (e) {
        this.opts.logger.error({ err: e }, 'onClientAbort callback threw');
      }
    }
    if (s.writeCb) {
      const cb = s.writeCb;
      s.writeCb = undefined;
      process.nextTick(cb, err);
    }
    if (s.finalCb) {
      const cb = s.finalCb;
      s.finalCb = undefined;
      process.nextTick(cb, err);
    }
  }

  /**
   * Stops reading a request stream: STOP_SENDING with `code` (RFC 9114 §4.1.1). What quiche already holds
   * for it is read and dropped first (reading is what returns flow-control credit). The client answers with
   * RESET_STREAM, and with quiche 0.18 each such stop can shrink the connection's window for good, until
   * requests on it cannot send even their HEADERS (measured with the bench client, 1 MiB uploads to a
   * backend that answers at once, 2 MiB connection window: 1 connection in 6 stalled after 24 to 30
   * uploads, with or without the read-first; the client's sent bytes stopped at the window). So a
   * connection that has stopped `stopBudget` streams sends GOAWAY: requests in flight finish, new ones go
   * to a new connection.
   */
  private stopReading(id: number, code: number): void {
    const conn = this.qc.conn;
    try {
      while (conn.streamRecv(id, this.opts.readBuf) !== null);
    } catch {
      // reset, or nothing more to read
    }
    try {
      conn.streamShutdown(id, SHUTDOWN_READ, code);
    } catch {
      return; // already finished in that direction: nothing was stopped
    }
    // No FIN will reach the HTTP/3 layer: let it forget the stream (and cancel it for QPACK, RFC 9204 §4.4.2).
    this.h3.streamReset(id, code);
    if (++this.stops === this.opts.stopBudget) {
      this.opts.logger.info({ conn: this.qc.key, stopped: this.stops }, 'HTTP/3 GOAWAY: request streams stopped on this connection may have used up its flow-control credit');
      this.goaway();
    }
  }

  /**
   * The response is complete but the request body is not: read the rest and drop it (as nginx discards an
   * unread HTTP/1.1 body) rather than stop the stream, which can cost flow-control credit (stopReading).
   * RFC 9114 §4.1 allows either. Past DISCARD_LIMIT the stream is stopped after all.
   */
  private finishRequestBody(s: RequestState): void {
    const body = s.body;
    s.body = null;
    body?.destroy();
    s.discarding = true;
    if (s.paused) {
      s.paused = false;
      this.opts.wake();
    }
  }

  private stopDiscarding(s: RequestState): void {
    s.discarding = false;
    s.readDone = true;
    this.stopReading(s.id, H3_NO_ERROR);
    this.requests.delete(s.id);
  }

  private maybeDone(s: RequestState): void {
    if (!s.writer.finSent) return;
    if (!s.readDone && !this.dead) {
      if (!s.discarding) this.finishRequestBody(s);
      return;
    }
    this.requests.delete(s.id);
  }

  private closeConnection(code: number, reason: string): void {
    if (this.dead) return;
    try {
      this.qc.conn.close(true, code, Buffer.from(reason));
    } catch {
      // already closing
    }
    this.opts.wake();
  }
}
