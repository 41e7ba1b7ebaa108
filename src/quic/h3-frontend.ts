// HTTP/3 on one QUIC connection: binds the sans-IO H3ServerConnection (src/http3/connection.ts) to quiche
// streams and turns each request into a FrontRequest and a FrontResponse (H3RequestStream) for the pipeline.
//
// What this layer owns, as every frontend does (src/shared/http-types.ts):
//   - malformed requests and oversized header sections never reach the pipeline (the HTTP/3 layer
//     validates; 431 for a section over server.maxHeaderSize, 501 for CONNECT and for an extended CONNECT
//     other than WebSocket);
//   - WebSocket (RFC 9220, with websocket.enabled): SETTINGS_ENABLE_CONNECT_PROTOCOL is offered, and an
//     extended CONNECT with :protocol websocket goes to the pipeline as a GET with upgrade 'websocket'.
//     Once the proxy accepts it (upgrade(): 200), the stream's DATA frames carry the WebSocket both ways
//     (src/quic/h3-tunnel.ts); a tunnel has no read or write timeout (websocket.idleTimeout applies) and
//     its end by the client is no reset;
//   - server.readTimeout: a stream whose header section is not complete that long after it opened, or
//     whose body pauses that long (while we are reading it), is reset; server.writeTimeout: a response
//     that makes no progress into quiche that long (the client stopped reading) is reset;
//   - client resets (RESET_STREAM, STOP_SENDING) cancel the request at once (onClientAbort, the body
//     errors) and are counted: past FrontendLimits.maxResetsPerWindow per connection, or the per-address
//     budget of the ClientResetLimiter, the connection is closed with H3_EXCESSIVE_LOAD (CVE-2023-44487).
//
// Backpressure both ways: a request stream is not read from quiche while its body Readable is full
// (quiche's flow control then slows the client, RFC 9000 §4), and write() asks the pipeline to wait while
// more than about one stream window waits for quiche stream capacity. A request body nobody wants any
// more (the response is complete) is read and dropped up to DISCARD_LIMIT rather than stopped.
import type { Logger } from 'pino';
import type { FrontRequest, HeaderList, RequestHandler } from '../shared/http-types.ts';
import type { FrontendLimits } from '../config/limits.ts';
import { H3ServerConnection, type H3Request } from '../http3/connection.ts';
import {
  H3_EXCESSIVE_LOAD,
  H3_INTERNAL_ERROR,
  H3_NO_ERROR,
  H3_REQUEST_CANCELLED,
  H3_REQUEST_REJECTED,
  h3ErrorName,
} from '../http3/errors.ts';
import { isClientBidi } from '../http3/stream-ids.ts';
import type { QuicApp, QuicConn } from './connection.ts';
import { SHUTDOWN_READ, SHUTDOWN_WRITE } from './quiche.ts';
import { StreamWriter } from './stream-writer.ts';
import { toQuicError, type QuicError } from './errors.ts';
import { H3RequestStream, MAX_BUFFERED_RESPONSE, type StreamHost } from './h3-request-stream.ts';
import { RequestBody } from './h3-request-body.ts';
import type { H3Tunnel } from './h3-tunnel.ts';
import { requestHead } from './h3-request-head.ts';
import { ResetWindow, type ClientResetLimiter } from './reset-limiter.ts';

/** Request body bytes read and dropped after an early response before the stream is stopped instead. */
const DISCARD_LIMIT = 4 * 1024 * 1024;
/**
 * How often requests waiting for their response are checked for a client STOP_SENDING. quiche tells of
 * one only when we write (or, once it has freed the stream, not at all: streamSend answers Done), so
 * without a check a cancelled request would keep its backend request until the response came.
 */
const STOP_PROBE_INTERVAL_MS = 20;

export type H3TimeoutCode = 'QUICLB_READ_TIMEOUT' | 'QUICLB_WRITE_TIMEOUT';

export class H3TimeoutError extends Error {
  readonly code: H3TimeoutCode;
  constructor(code: H3TimeoutCode, message: string) {
    super(message);
    this.name = 'H3TimeoutError';
    this.code = code;
  }
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
   * cost connection flow-control credit for good (see stopRead). At least 1.
   */
  stopBudget: number;
  limits: FrontendLimits;
  /** Per-client-address reset budget, shared by the connections of this shard (or of all shards). */
  resetLimiter: ClientResetLimiter;
}

export class H3Frontend implements QuicApp, StreamHost {
  readonly logger: Logger;
  private readonly qc: QuicConn;
  private readonly opts: H3FrontendOptions;
  private readonly h3: H3ServerConnection;
  private readonly requests = new Map<number, H3RequestStream>();
  /** Server-initiated unidirectional streams (control, QPACK encoder/decoder). */
  private readonly uni = new Map<number, StreamWriter>();
  /** Writers quiche refused bytes to (flow control): retried on every service. */
  private blocked = new Set<StreamWriter>();
  private spareBlocked = new Set<StreamWriter>();
  /** Streams with new output since the last flush. */
  private dirty: H3RequestStream[] = [];
  private spareDirty: H3RequestStream[] = [];
  private toDispatch: H3RequestStream[] = [];
  private spareDispatch: H3RequestStream[] = [];
  private readonly resets: ResetWindow;
  private goingAway = false;
  private stops = 0;
  private dead = false;
  /** Over a reset budget: nothing more is dispatched; the connection is being closed. */
  private excessive = false;
  /** In service() before flushWriters(): output queued now leaves in this same service. */
  private beforeFlush = false;
  private lastProbe = 0;
  /** The stream being handed to the HTTP/3 layer, and whether that read carried its FIN. */
  private readingId = -1;
  private readingFin = false;

  constructor(opts: H3FrontendOptions) {
    this.opts = opts;
    this.qc = opts.qc;
    this.logger = opts.logger;
    this.resets = new ResetWindow(opts.limits.maxResetsPerWindow, opts.limits.resetWindowMs);
    this.h3 = new H3ServerConnection(
      {
        onRequest: (req) => this.onH3Request(req),
        onData: (id, chunk) => this.onH3Data(id, chunk),
        onEnd: (id) => this.onH3End(id),
        onStreamError: (id, code, reason, status) => this.onH3StreamError(id, code, reason, status),
        onConnectionError: (code, reason) => this.closeConnection(code, reason),
      },
      // RFC 9114 §4.2.2: server.maxHeaderSize is advertised as SETTINGS_MAX_FIELD_SECTION_SIZE and enforced.
      {
        maxFieldSectionSize: opts.limits.maxHeaderSize,
        maxFieldLines: opts.limits.maxHeaderCount,
        enableConnectProtocol: opts.limits.extendedConnect,
      },
    );
    this.h3.start();
    this.pumpUni();
  }

  // ---- QuicApp -------------------------------------------------------------------------------

  service(): void {
    if (this.dead) return;
    this.beforeFlush = true;
    try {
      const conn = this.qc.conn;
      if (conn.isReadable()) {
        for (const id of conn.readable()) {
          this.readStream(id);
          if (this.dead) return;
        }
      }
      this.dispatch();
      this.beforeFlush = false;
      this.flushWriters();
      const now = performance.now();
      if (now - this.lastProbe >= STOP_PROBE_INTERVAL_MS) this.probeStops(now);
      this.pumpUni();
    } finally {
      this.beforeFlush = false;
    }
  }

  sweep(now: number): void {
    if (this.dead) return;
    const { readTimeoutMs, writeTimeoutMs } = this.opts.limits;
    for (const s of this.requests.values()) {
      // A WebSocket waiting for the backend's answer sends nothing; a tunnel has websocket.idleTimeout instead.
      // (A refused one is a request like any other again: what the client still sends is discarded, timed.)
      if (s.tunnel || (s.websocket && s.dispatched && !s.headersSent)) continue;
      if (readTimeoutMs > 0 && !s.readDone && !s.paused && now - s.readAt > readTimeoutMs) this.readTimedOut(s);
      else if (writeTimeoutMs > 0 && s.headersSent && !s.writer.idle && now - s.writeAt > writeTimeoutMs) this.writeTimedOut(s);
      if (this.dead) return;
    }
    this.probeStops(now);
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
    this.teardown('QUIC connection closed');
  }

  stateCounts(): Record<string, number> {
    return {
      requests: this.requests.size,
      blockedWriters: this.blocked.size,
      dirty: this.dirty.length,
      toDispatch: this.toDispatch.length,
      ...this.h3.stateCounts(),
    };
  }

  /** Asks the endpoint to service and flush this connection again (once per turn, however often asked). */
  private kick(): void {
    this.opts.wake();
  }

  // ---- StreamHost ----------------------------------------------------------------------------

  encodeResponseHeaders(streamId: number, status: number, headers: HeaderList): Uint8Array {
    // Copied: H3ServerConnection hands out a view of its reusable encoder buffer (measured: the bytes of a
    // queued HEADERS frame changed when the next response was encoded).
    return new Uint8Array(this.h3.encodeResponseHeaders(streamId, status, headers));
  }

  flushSoon(s: H3RequestStream): void {
    if (s.dirty) return;
    s.dirty = true;
    this.dirty.push(s);
    if (!this.beforeFlush) this.opts.wake();
  }

  abortResponse(s: H3RequestStream, _reason?: Error): void {
    if (s.closed || this.dead) return;
    // RFC 9114 §4.1.1: an aborted response is a reset stream with H3_INTERNAL_ERROR.
    this.shutdown(s.id, SHUTDOWN_WRITE, H3_INTERNAL_ERROR);
    if (!s.readDone) this.stopRead(s, H3_REQUEST_CANCELLED);
    this.forget(s);
    s.body?.destroy();
    this.kick();
  }

  resumeBody(s: H3RequestStream): void {
    if (!s.paused || s.closed) return;
    s.paused = false;
    s.readAt = performance.now();
    this.kick();
  }

  startTunnel(s: H3RequestStream, tunnel: H3Tunnel): void {
    s.body = tunnel;
    const early = s.early;
    s.early = undefined;
    // DATA the client sent before our 200 (held, with reading paused) is the tunnel's first bytes.
    if (early !== undefined) for (const c of early) tunnel.push(c);
    if (s.ended) tunnel.push(null);
    if (s.paused) this.resumeBody(s);
  }

  // ---- reading -------------------------------------------------------------------------------

  private readStream(id: number): void {
    if (!isClientBidi(id)) {
      this.readUni(id);
      return;
    }
    let s = this.requests.get(id);
    if (s === undefined) {
      if (this.h3.isRequestFinished(id) || this.excessive) {
        this.dropStream(id);
        return;
      }
      s = new H3RequestStream(id, this, performance.now());
      this.requests.set(id, s);
    } else if (s.paused || s.readBlocked) {
      // Not read while the body Readable is full or the header section waits for QPACK inserts, but a reset
      // must not wait for that: quiche reports a reset stream as finished before anything was read.
      if (!this.qc.conn.streamFinished(id)) return;
    }
    const conn = this.qc.conn;
    const buf = this.opts.readBuf;
    for (;;) {
      let r: [number, boolean] | null;
      try {
        r = conn.streamRecv(id, buf);
      } catch (err) {
        const e = toQuicError(err);
        if (e.code === 'QUIC_STREAM_RESET') this.onClientReset(s, e.value ?? H3_REQUEST_CANCELLED);
        else if (e.code !== 'QUIC_DONE') this.streamVanished(s, e);
        return;
      }
      if (r === null) {
        // quiche drops unread bytes when a RESET_STREAM follows the FIN, and then reports nothing but a
        // finished stream (measured): that is a reset too.
        if (!s.finSeen && conn.streamFinished(id)) this.onClientReset(s, H3_REQUEST_CANCELLED);
        return;
      }
      const [n, fin] = r;
      s.readAt = performance.now();
      if (fin) s.finSeen = true;
      this.readingId = id;
      this.readingFin = fin;
      try {
        this.h3.receive(id, Buffer.from(buf.subarray(0, n)), fin);
      } catch (err) {
        // H3ServerConnection reports violations through events; anything thrown is our bug.
        this.logger.error({ err, streamId: id }, 'HTTP/3 receive failed');
        this.closeConnection(H3_INTERNAL_ERROR, 'internal error');
        return;
      } finally {
        this.readingId = -1;
      }
      if (fin || this.dead || s.closed || s.paused) return;
      if (this.h3.isBlocked(id)) {
        s.readBlocked = true;
        return;
      }
    }
  }

  private readUni(id: number): void {
    const conn = this.qc.conn;
    const buf = this.opts.readBuf;
    for (;;) {
      let r: [number, boolean] | null;
      try {
        r = conn.streamRecv(id, buf);
      } catch (err) {
        const e = toQuicError(err);
        if (e.code === 'QUIC_STREAM_RESET') this.h3.streamReset(id, e.value ?? 0);
        return;
      }
      if (r === null) return;
      const [n, fin] = r;
      try {
        this.h3.receive(id, Buffer.from(buf.subarray(0, n)), fin);
      } catch (err) {
        this.logger.error({ err, streamId: id }, 'HTTP/3 receive failed');
        this.closeConnection(H3_INTERNAL_ERROR, 'internal error');
        return;
      }
      if (fin || this.dead) return;
    }
  }

  /** Reads and drops whatever quiche still holds for a stream we are done with. */
  private dropStream(id: number): void {
    const conn = this.qc.conn;
    try {
      while (conn.streamRecv(id, this.opts.readBuf) !== null);
    } catch {
      // reset or gone
    }
  }

  private onH3Request(req: H3Request): void {
    const s = this.requests.get(req.streamId);
    if (s === undefined || s.closed) return;
    s.fields = req.headers;
    s.headerDone = true;
    this.toDispatch.push(s);
    if (s.readBlocked) {
      // Its header section was unblocked by the encoder stream: the rest of the stream waits in quiche.
      s.readBlocked = false;
      this.kick();
    }
  }

  private onH3Data(id: number, chunk: Uint8Array): void {
    const s = this.requests.get(id);
    if (s === undefined || s.closed) return;
    if (s.discarding) {
      s.discarded += chunk.length;
      if (s.discarded > DISCARD_LIMIT) this.stopDiscarding(s);
      return;
    }
    if (!s.dispatched) {
      (s.early ??= []).push(chunk);
      return;
    }
    if (s.body === null) {
      if (s.websocket && !s.headersSent) {
        // A WebSocket's first bytes before the backend accepted it: kept for the tunnel, and the stream is
        // not read further until then (flow control bounds what the client can send meanwhile).
        (s.early ??= []).push(chunk);
        s.paused = true;
      }
      return;
    }
    try {
      // In flowing mode push() runs the consumer's 'data' listeners right here: one that throws fails its
      // own request, not the connection.
      if (!s.body.push(chunk)) s.paused = true;
    } catch (err) {
      this.logger.error({ err, streamId: id }, 'request body consumer threw');
      this.abortResponse(s, err as Error);
    }
  }

  private onH3End(id: number): void {
    const s = this.requests.get(id);
    if (s === undefined) return;
    s.ended = true;
    s.readDone = true;
    if (s.dispatched && s.body !== null) s.body.push(null);
    this.maybeDone(s);
  }

  private onH3StreamError(id: number, code: number, reason: string, status: number | undefined): void {
    if (!isClientBidi(id)) {
      // A unidirectional stream we do not read (unknown type): STOP_SENDING (RFC 9114 §6.2).
      this.shutdown(id, SHUTDOWN_READ, code);
      return;
    }
    const s = this.requests.get(id);
    const finRead = s?.finSeen === true || (id === this.readingId && this.readingFin);
    if (s !== undefined && status !== undefined && !s.dispatched && !s.headersSent) {
      this.refuse(s, status, finRead);
      return;
    }
    this.shutdown(id, SHUTDOWN_WRITE, code);
    if (s === undefined) {
      if (!finRead) this.shutdown(id, SHUTDOWN_READ, code);
    } else {
      if (!finRead && !s.readDone) this.stopRead(s, code);
      this.clientGone(s, new Error(`HTTP/3 stream error ${h3ErrorName(code)}: ${reason}`));
    }
    this.kick();
  }

  private dispatch(): void {
    if (this.toDispatch.length === 0) return;
    const list = this.toDispatch;
    this.toDispatch = this.spareDispatch;
    for (let i = 0; i < list.length; i++) {
      const s = list[i];
      if (this.dead) break;
      if (s.closed || s.refused || s.dispatched || this.excessive) continue;
      // A STOP_SENDING that came with the request leaves quiche's stream stopped or already freed.
      try {
        this.qc.conn.streamCapacity(s.id);
      } catch (err) {
        this.onClientStop(s, toQuicError(err));
        continue;
      }
      this.dispatchOne(s);
    }
    list.length = 0;
    this.spareDispatch = list;
  }

  private dispatchOne(s: H3RequestStream): void {
    const head = requestHead(s.fields as Array<[string, string]>);
    s.fields = undefined;
    if (head.method === 'CONNECT') {
      if (head.protocol !== 'websocket') {
        // RFC 9114 §4.4: quiclb is no tunnel; 501 (RFC 9110 §15.6.2) before anything past this layer sees
        // it. The same for an extended CONNECT (RFC 9220) for any protocol but WebSocket.
        this.refuse(s, 501, s.finSeen);
        return;
      }
      // RFC 9220 §3: a WebSocket handshake; every frontend hands it on as a GET with upgrade 'websocket'.
      head.method = 'GET';
      s.websocket = true;
    }
    s.dispatched = true;
    s.isHead = head.method === 'HEAD';
    const early = s.websocket ? undefined : s.early;
    if (!s.websocket) s.early = undefined;
    if (!s.websocket && !(s.ended && early === undefined)) {
      const body = new RequestBody(s);
      s.body = body;
      if (early !== undefined) for (const c of early) if (!body.push(c)) s.paused = true;
      if (s.ended) body.push(null);
    }
    const req: FrontRequest = {
      protocol: 'HTTP/3',
      method: head.method,
      // The connection's scheme (TLS), whatever :scheme said (RFC 9114 §4.3.1 allows http over HTTP/3).
      scheme: 'https',
      authority: head.authority,
      path: head.path,
      headers: head.headers,
      body: s.body,
      remoteAddress: this.qc.peer.host,
      remotePort: this.qc.peer.port,
      localPort: this.opts.localPort,
      connectionKey: this.qc.key,
      shard: this.opts.shard,
    };
    if (s.websocket) req.upgrade = 'websocket';
    try {
      this.opts.onRequest(req, s);
    } catch (err) {
      this.logger.error({ err, streamId: s.id }, 'request handler threw');
      this.abortResponse(s, err as Error);
    }
  }

  /**
   * Answers a request with `status` itself (431, 501) and stops reading the rest of it: RFC 9114 §4.1 allows
   * a complete response before the whole request, with STOP_SENDING H3_NO_ERROR for the rest.
   */
  private refuse(s: H3RequestStream, status: number, finRead: boolean): void {
    s.refused = true;
    s.fields = undefined;
    s.early = undefined;
    if (!finRead && !s.readDone) this.stopRead(s, H3_NO_ERROR);
    else this.h3.streamReset(s.id, H3_NO_ERROR);
    s.readDone = true;
    s.respond(status, [['content-length', '0']]).end();
  }

  // ---- client resets, stops and timeouts -------------------------------------------------------

  /** The client reset its side of the stream (RESET_STREAM). */
  private onClientReset(s: H3RequestStream, code: number): void {
    this.h3.streamReset(s.id, code);
    // Both directions shut, or quiche never frees the stream and the client's stream credit (MAX_STREAMS)
    // is never returned (measured: a reset stream whose sending side stays open is never collected).
    if (!s.writer.finSent) this.shutdown(s.id, SHUTDOWN_WRITE, H3_REQUEST_CANCELLED);
    this.shutdown(s.id, SHUTDOWN_READ, H3_REQUEST_CANCELLED);
    if (!s.writer.finSent && !s.tunnel) this.countReset();
    this.clientGone(s, new Error(`client reset the request stream (${h3ErrorName(code)})`));
    s.readDone = true;
    this.kick();
  }

  /** The client asked us to stop sending the response (STOP_SENDING), or quiche freed the stream for it. */
  private onClientStop(s: H3RequestStream, e: QuicError): void {
    if (s.closed) return;
    if (!s.writer.finSent && !s.tunnel) this.countReset();
    if (s.closed) return; // the connection was closed for it
    if (!s.readDone) this.stopRead(s, H3_REQUEST_CANCELLED);
    else this.h3.streamReset(s.id, H3_REQUEST_CANCELLED);
    const code = e.code === 'QUIC_STREAM_STOPPED' ? h3ErrorName(e.value ?? 0) : 'stream freed';
    this.clientGone(s, new Error(`client stopped reading the response (${code})`));
    this.kick();
  }

  /** quiche no longer knows the stream (InvalidStreamState): nothing more can be read or written. */
  private streamVanished(s: H3RequestStream, e: QuicError): void {
    this.h3.streamReset(s.id, H3_REQUEST_CANCELLED);
    s.readDone = true;
    this.clientGone(s, new Error(`HTTP/3 stream gone: ${e.message}`));
  }

  /** One client reset of an unfinished request; past a budget the connection is closed (CVE-2023-44487). */
  private countReset(): void {
    const now = performance.now();
    const connOk = this.resets.record(now);
    const addrOk = this.opts.resetLimiter.recordReset(this.qc.peer.host, now);
    if ((connOk && addrOk) || this.excessive) return;
    this.excessive = true;
    const l = this.opts.limits;
    this.logger.warn(
      { conn: this.qc.key, client: this.qc.peer.host, limit: connOk ? 'per client address' : `${l.maxResetsPerWindow} per ${l.resetWindowMs} ms` },
      'HTTP/3 connection closed with H3_EXCESSIVE_LOAD: too many request streams reset by the client',
    );
    // RFC 9114 §8.1: H3_EXCESSIVE_LOAD for a peer generating excessive load.
    this.closeConnection(H3_EXCESSIVE_LOAD, 'too many stream resets');
  }

  private readTimedOut(s: H3RequestStream): void {
    // Before the header section, the request was never processed: H3_REQUEST_REJECTED (RFC 9114 §8.1).
    const code = s.headerDone ? H3_REQUEST_CANCELLED : H3_REQUEST_REJECTED;
    const what = s.headerDone ? 'request body paused' : 'request header section incomplete';
    this.logger.debug({ conn: this.qc.key, streamId: s.id, timeoutMs: this.opts.limits.readTimeoutMs }, `HTTP/3 read timeout: ${what}`);
    this.shutdown(s.id, SHUTDOWN_WRITE, code);
    this.stopRead(s, code);
    this.clientGone(s, new H3TimeoutError('QUICLB_READ_TIMEOUT', `HTTP/3 ${what} for more than server.readTimeout (${this.opts.limits.readTimeoutMs} ms)`));
    this.kick();
  }

  private writeTimedOut(s: H3RequestStream): void {
    this.logger.debug({ conn: this.qc.key, streamId: s.id, timeoutMs: this.opts.limits.writeTimeoutMs }, 'HTTP/3 write timeout');
    this.shutdown(s.id, SHUTDOWN_WRITE, H3_REQUEST_CANCELLED);
    if (!s.readDone) this.stopRead(s, H3_REQUEST_CANCELLED);
    this.clientGone(
      s,
      new H3TimeoutError('QUICLB_WRITE_TIMEOUT', `HTTP/3 client read none of the response for more than server.writeTimeout (${this.opts.limits.writeTimeoutMs} ms)`),
    );
    this.kick();
  }

  /** Checks the requests waiting for their response for a client STOP_SENDING (see STOP_PROBE_INTERVAL_MS). */
  private probeStops(now: number): void {
    this.lastProbe = now;
    const conn = this.qc.conn;
    for (const s of this.requests.values()) {
      // A tunnel learns of a STOP_SENDING at its next write, and of a reset when it reads: no probe per
      // long-lived WebSocket every 20 ms.
      if (!s.dispatched || s.tunnel || s.writer.finSent || s.writer.hasPendingData) continue;
      try {
        conn.streamCapacity(s.id);
      } catch (err) {
        this.onClientStop(s, toQuicError(err));
        if (this.dead) return;
      }
    }
  }

  // ---- writing -------------------------------------------------------------------------------

  /** Moves what this turn queued into quiche, and retries the writers quiche refused before. */
  private flushWriters(): void {
    if (this.blocked.size > 0) {
      const b = this.blocked;
      this.blocked = this.spareBlocked;
      for (const w of b) this.drainWriter(w);
      b.clear();
      this.spareBlocked = b;
    }
    if (this.dirty.length > 0) {
      const d = this.dirty;
      this.dirty = this.spareDirty;
      for (let i = 0; i < d.length; i++) {
        const s = d[i];
        s.dirty = false;
        if (!s.closed) this.drainWriter(s.writer);
      }
      d.length = 0;
      this.spareDirty = d;
    }
  }

  private drainWriter(w: StreamWriter): void {
    if (this.dead) return;
    const before = w.queued;
    const result = w.drain(this.qc.conn);
    const s = this.requests.get(w.streamId);
    if (s === undefined || s.writer !== w) {
      if (result === 'blocked') this.blocked.add(w);
      else if (result === 'failed' && this.uni.get(w.streamId) === w) this.closeConnection(H3_INTERNAL_ERROR, 'cannot write a control stream');
      return;
    }
    if (result === 'failed') {
      const e = w.error as QuicError;
      if (e.code === 'QUIC_STREAM_STOPPED' || e.code === 'QUIC_INVALID_STREAM_STATE') this.onClientStop(s, e);
      else this.clientGone(s, e);
      return;
    }
    if (w.queued !== before) s.writeAt = performance.now();
    if (result === 'blocked') {
      this.blocked.add(w);
      // quiche answers Done for a stream it has freed after the client's STOP_SENDING: not "no capacity".
      if (w.queued === before) {
        try {
          this.qc.conn.streamCapacity(w.streamId);
        } catch (err) {
          this.blocked.delete(w);
          this.onClientStop(s, toQuicError(err));
          return;
        }
      }
    }
    if (w.queued <= MAX_BUFFERED_RESPONSE) s.drained();
    if (w.finSent) this.maybeDone(s);
  }

  private pumpUni(): void {
    if (this.dead) return;
    const out = this.h3.takeOutgoing();
    for (let i = 0; i < out.length; i++) {
      const { streamId, data, fin } = out[i];
      let w = this.uni.get(streamId);
      if (w === undefined) {
        w = new StreamWriter(streamId);
        this.uni.set(streamId, w);
      }
      w.push(new Uint8Array(data)); // copied, as for HEADERS
      if (fin) w.end();
      this.drainWriter(w);
    }
  }

  // ---- ending streams ------------------------------------------------------------------------

  /** The client went away from this request (or it failed): the pipeline learns of it, its state goes. */
  private clientGone(s: H3RequestStream, err: Error): void {
    if (s.closed) return;
    this.forget(s);
    if (!s.writer.finSent) s.clientGone(err);
    else if (s.body !== null && !s.ended) s.body.destroy(err);
  }

  private forget(s: H3RequestStream): void {
    s.closed = true;
    s.early = undefined;
    s.fields = undefined;
    this.requests.delete(s.id);
    this.blocked.delete(s.writer);
  }

  private shutdown(id: number, direction: number, code: number): boolean {
    try {
      this.qc.conn.streamShutdown(id, direction, code);
      return true;
    } catch {
      return false; // already finished in that direction
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
  private stopRead(s: H3RequestStream, code: number): void {
    s.readDone = true;
    this.dropStream(s.id);
    // No FIN will reach the HTTP/3 layer: let it forget the stream (and cancel it for QPACK, RFC 9204 §4.4.2).
    this.h3.streamReset(s.id, code);
    if (!this.shutdown(s.id, SHUTDOWN_READ, code)) return; // nothing was stopped
    if (++this.stops === this.opts.stopBudget) {
      this.logger.info({ conn: this.qc.key, stopped: this.stops }, 'HTTP/3 GOAWAY: request streams stopped on this connection may have used up its flow-control credit');
      this.goaway();
    }
  }

  /**
   * The response is complete but the request body is not: read the rest and drop it (as nginx discards an
   * unread HTTP/1.1 body) rather than stop the stream, which can cost flow-control credit (stopRead).
   * RFC 9114 §4.1 allows either. Past DISCARD_LIMIT the stream is stopped after all.
   */
  private finishRequestBody(s: H3RequestStream): void {
    const body = s.body;
    s.body = null;
    body?.destroy();
    s.discarding = true;
    if (s.paused) {
      s.paused = false;
      s.readAt = performance.now();
      this.kick();
    }
  }

  private stopDiscarding(s: H3RequestStream): void {
    s.discarding = false;
    this.stopRead(s, H3_NO_ERROR);
    this.forget(s);
  }

  private maybeDone(s: H3RequestStream): void {
    if (!s.writer.finSent || s.closed) return;
    if (!s.readDone && !this.dead) {
      if (!s.discarding) this.finishRequestBody(s);
      return;
    }
    this.forget(s);
  }

  /** The connection is gone or going: every request still open learns that its client went away. */
  private teardown(reason: string): void {
    if (this.dead) return;
    this.dead = true;
    const err = new Error(reason);
    for (const s of this.requests.values()) this.clientGone(s, err);
    this.requests.clear();
    this.blocked.clear();
    this.dirty.length = 0;
    this.toDispatch.length = 0;
  }

  private closeConnection(code: number, reason: string): void {
    if (this.dead) return;
    try {
      this.qc.conn.close(true, code, Buffer.from(reason));
    } catch {
      // already closing
    }
    this.teardown(`HTTP/3 connection closed: ${reason}`);
    this.kick();
  }
}
