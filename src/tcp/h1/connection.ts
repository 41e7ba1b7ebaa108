// One HTTP/1.1 client connection (plain or TLS): node's llhttp parser fed from the socket, requests answered
// one at a time in arrival order (pipelined ones wait in a short queue), and every server.* limit enforced
// here the same way the HTTP/2 and HTTP/3 frontends enforce it (src/config/limits.ts):
//   readTimeout   header section complete within it (408), body pauses no longer than it
//   idleTimeout   between requests on a keep-alive connection
//   writeTimeout  a response the client stops reading
//   maxHeaderSize llhttp's own bound on the header section (431), maxHeaderCount (431)
// Malformed requests are answered here (400/405/431/505) and never reach the pipeline.
import { Readable } from 'node:stream';
import type { Socket } from 'node:net';
import type { FrontendLimits } from '../../config/limits.ts';
import type { FrontRequest, HeaderList, RequestHandler } from '../../shared/http-types.ts';
import { normalizeIp } from '../../shared/ip.ts';
import { ClientError } from '../../shared/client-errors.ts';
import type { Logger } from '../../shared/logger.ts';
import { createRequestParser, isParseError, METHODS, type NativeParser, type ParseError } from './llhttp.ts';
import { H1Exchange, type ExchangeHost } from './exchange.ts';
import { resolveTarget } from './request-target.ts';
import { errorResponse } from './response-head.ts';

/**
 * The connection that owns a socket, for inspection from outside (the fuzz runner reports the state of a
 * connection that stayed open through the inspector: test/fuzz/inspector.ts). Never read by quiclb itself.
 */
export const INSPECT_CONNECTION = Symbol.for('quiclb.h1.connection');

/** Pipelined requests parsed ahead of the one being answered before reading pauses. */
const MAX_PIPELINED = 16;
/** Request body bytes buffered per request before reading from the socket pauses. */
const BODY_HIGH_WATER = 64 * 1024;
/** Bytes a client may send after its WebSocket handshake before the answer; more closes the connection. */
const MAX_EARLY_TUNNEL_BYTES = 64 * 1024;
/** After an early response, at most this much of the unread request body is read and dropped (as nginx's lingering read); more closes the connection. */
const DISCARD_LIMIT = 1024 * 1024;

/** What the read deadline is for. */
const READ_NONE = 0; // waiting for our own answer: no read deadline
const READ_IDLE = 1; // keep-alive between requests: idleTimeout
const READ_HEADER = 2; // a header section is due: readTimeout
const READ_BODY = 3; // a request body is arriving: readTimeout between chunks
type ReadKind = typeof READ_NONE | typeof READ_IDLE | typeof READ_HEADER | typeof READ_BODY;

export interface H1ConnectionOptions {
  limits: FrontendLimits;
  scheme: 'http' | 'https';
  shard: number;
  connectionKey: string;
  onRequest: RequestHandler;
  logger: Logger;
  /** Whether the frontend is draining (no keep-alive after the current response). */
  draining: () => boolean;
}

export class H1Connection implements ExchangeHost {
  readonly socket: Socket;
  private readonly opts: H1ConnectionOptions;
  private readonly limits: FrontendLimits;
  private readonly parser: NativeParser;
  /** Parsed requests in arrival order; queue[0] is the one being answered. */
  private readonly queue: H1Exchange[] = [];
  /** The request whose body the parser is reading now. */
  private reading: H1Exchange | null = null;
  /** Header pairs llhttp flushed before the header section completed (more than 32, or split reads). */
  private partialHeaders: string[] | null = null;
  private partialUrl = '';
  /** No request after the ones already queued (close requested, parse error, upgrade). */
  private stopParsing = false;
  /** Our side has ended: what the client still sends is read and dropped, so its FIN is seen. */
  private lingering = false;
  private lingered = 0;
  private closed = false;
  private pausedForBody = false;
  private pausedForQueue = false;
  private corked = false;
  /** A refusal (400/431/...) waiting for the responses queued before it. */
  private pendingRefusal: string | undefined;
  /** Bytes that followed a WebSocket handshake in the same read. */
  private upgradeHead: Buffer | undefined;
  /** A WebSocket handshake was parsed: later bytes wait in upgradeHead for the tunnel (or the close). */
  private awaitingUpgrade = false;
  private detached = false;
  private drainWaiters: Array<() => void> = [];
  private readDeadline = 0;
  private readKind: ReadKind = READ_HEADER;
  private writeDeadline = 0;
  private readonly remoteAddress: string;
  private readonly remotePort: number;
  private readonly localPort: number;

  constructor(socket: Socket, opts: H1ConnectionOptions, now: number) {
    this.socket = socket;
    (socket as Socket & { [INSPECT_CONNECTION]?: H1Connection })[INSPECT_CONNECTION] = this;
    this.opts = opts;
    this.limits = opts.limits;
    this.remoteAddress = normalizeIp(socket.remoteAddress ?? '');
    this.remotePort = socket.remotePort ?? 0;
    this.localPort = socket.localPort ?? 0;
    this.parser = createRequestParser(
      {
        onHeaders: (headers, url) => this.onHeaders(headers, url),
        onHeadersComplete: (major, minor, headers, method, url, _s, _m, upgrade, keepAlive) =>
          this.onHeadersComplete(major, minor, headers, method, url, upgrade, keepAlive),
        onBody: (chunk) => this.onBody(chunk),
        onMessageComplete: () => this.onMessageComplete(),
      },
      opts.limits.maxHeaderSize,
    );
    // A new connection must deliver its first header section within readTimeout (nginx's
    // client_header_timeout): idle sockets that never send a request do not stay open.
    this.readDeadline = now + this.limits.readTimeoutMs;
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('drain', () => this.onSocketDrain());
    socket.once('close', () => this.onClose());
  }

  // ---- reading ----------------------------------------------------------------------------------

  private onData(chunk: Buffer): void {
    if (this.lingering) {
      this.lingered += chunk.length;
      if (this.lingered > DISCARD_LIMIT) this.destroy();
      return;
    }
    if (this.awaitingUpgrade) {
      // A WebSocket handshake waits for the backend's answer: what the client sends meanwhile (it should
      // wait, RFC 6455 §4.1) is kept for the tunnel, never parsed as HTTP.
      const held = this.upgradeHead === undefined ? chunk : Buffer.concat([this.upgradeHead, chunk]);
      if (held.length > MAX_EARLY_TUNNEL_BYTES) this.destroy(new Error('too many bytes before the WebSocket handshake was answered'));
      else this.upgradeHead = held;
      return;
    }
    if (this.readKind === READ_IDLE) {
      // The first bytes of the next request on a kept-alive connection: its header section is now due.
      this.readKind = READ_HEADER;
      this.readDeadline = Date.now() + this.limits.readTimeoutMs;
    }
    let result: number | ParseError | undefined;
    try {
      result = this.parser.execute(chunk);
    } catch (err) {
      // Our own callbacks threw: a bug, but one connection's bug.
      this.opts.logger.error({ err }, 'HTTP/1.1 request handling failed');
      this.destroy(err as Error);
      return;
    }
    if (isParseError(result)) this.parseFailed(result);
    else if (this.awaitingUpgrade && typeof result === 'number' && result < chunk.length) {
      // Bytes after a WebSocket handshake belong to the tunnel, if the upgrade is accepted.
      this.upgradeHead = chunk.subarray(result);
    }
  }

  private onHeaders(headers: string[], url: string): void {
    this.partialHeaders = this.partialHeaders === null ? headers : this.partialHeaders.concat(headers);
    this.partialUrl += url;
  }

  private onHeadersComplete(
    major: number,
    minor: number,
    rawHeaders: string[] | undefined,
    methodIndex: number,
    rawUrl: string | undefined,
    upgrade: boolean,
    keepAlive: boolean,
  ): number {
    // After 32 fields llhttp's binding hands the section over in batches (onHeaders) and then calls this
    // with no fields and no URL of its own.
    let raw = rawHeaders ?? [];
    let url = rawUrl ?? '';
    if (this.partialHeaders !== null) {
      raw = this.partialHeaders.concat(raw);
      url = this.partialUrl + url;
      this.partialHeaders = null;
      this.partialUrl = '';
    }
    if (this.stopParsing || this.closed) return 1;
    if (major !== 1) {
      // llhttp reads "HTTP/2.0" as a version; this port speaks HTTP/1.x only (RFC 9110 §15.6.6).
      this.refuse(505, 'this port speaks HTTP/1.0 and HTTP/1.1');
      return 1;
    }
    const method = METHODS[methodIndex] ?? '';
    if (raw.length / 2 > this.limits.maxHeaderCount) {
      this.refuse(431, `more than ${this.limits.maxHeaderCount} header fields`);
      return 1;
    }
    const headers: HeaderList = [];
    const hosts: string[] = [];
    let hasBody = false;
    let expectContinue = false;
    let badExpect = false;
    for (let i = 0; i < raw.length; i += 2) {
      const name = raw[i].toLowerCase();
      const value = raw[i + 1];
      switch (name) {
        case 'host':
          hosts.push(value);
          continue; // re-added once below, equal to the authority
        case 'content-length':
          if (value !== '0') hasBody = true;
          break;
        case 'transfer-encoding':
          hasBody = true;
          break;
        case 'expect':
          // RFC 9110 §10.1.1: 100-continue is the only expectation; answered by inform(100) when the body is wanted.
          if (value.toLowerCase() === '100-continue') expectContinue = true;
          else badExpect = true;
          continue;
      }
      headers.push([name, value]);
    }
    const http10 = minor === 0;
    const target = resolveTarget(method, url, hosts, http10);
    if (!target.ok) {
      this.refuse(target.status, target.reason, target.status === 405 ? 'allow: GET, HEAD, POST, PUT, DELETE, OPTIONS, PATCH\r\n' : '');
      return 1;
    }
    if (badExpect) {
      this.refuse(417, 'the only expectation quiclb meets is 100-continue');
      return 1;
    }
    let websocket = false;
    if (upgrade) {
      // llhttp stops parsing after an Upgrade request. A WebSocket handshake (RFC 6455 §4.1) goes to the
      // pipeline as such; any other upgrade (h2c, ...) is ignored (RFC 9110 §7.8) and answered as a plain
      // request, after which the connection closes.
      if (hasBody) {
        this.refuse(400, 'an Upgrade request with a body is not supported');
        return 1;
      }
      websocket = method === 'GET' && headers.some(([n, v]) => n === 'upgrade' && /(?:^|,)\s*websocket\s*(?:,|$)/i.test(v));
      this.stopParsing = true;
      keepAlive = false;
    } else if (!keepAlive) {
      this.stopParsing = true;
    }
    if (target.authority !== '') headers.push(['host', target.authority]);
    const body = hasBody ? this.newBody() : null;
    const req: FrontRequest = {
      protocol: 'HTTP/1.1',
      method,
      scheme: this.opts.scheme,
      authority: target.authority,
      path: target.path,
      headers,
      body,
      remoteAddress: this.remoteAddress,
      remotePort: this.remotePort,
      localPort: this.localPort,
      connectionKey: this.opts.connectionKey,
      shard: this.opts.shard,
    };
    if (websocket) {
      req.upgrade = 'websocket';
      this.awaitingUpgrade = true;
    }
    const ex = new H1Exchange(this, req, keepAlive, http10, expectContinue && !http10 && hasBody);
    if (body !== null) {
      this.reading = ex;
      (body as BodyStream).exchange = ex;
      this.readKind = READ_BODY;
      this.readDeadline = Date.now() + this.limits.readTimeoutMs;
    } else {
      this.readKind = READ_NONE;
      this.readDeadline = 0;
    }
    this.queue.push(ex);
    if (this.queue.length === 1) this.dispatch(ex);
    else if (this.queue.length >= MAX_PIPELINED && !this.pausedForQueue) {
      this.pausedForQueue = true;
      this.socket.pause();
    }
    return 0;
  }

  private newBody(): Readable {
    const body = new BodyStream({
      highWaterMark: BODY_HIGH_WATER,
      read: () => {
        const ex = body.exchange;
        // The pipeline wants the body now: the moment to send 100 Continue (RFC 9110 §10.1.1).
        if (ex?.expectContinue) ex.inform(100);
        if (this.pausedForBody) {
          this.pausedForBody = false;
          if (this.reading !== null) this.readDeadline = Date.now() + this.limits.readTimeoutMs;
          if (!this.pausedForQueue) this.socket.resume();
        }
      },
    });
    // A queued request's body has no reader yet; its destroy(err) (client gone, bad chunk, body timeout)
    // must not become an uncaught 'error'. The pipeline's reader still sees the error when it reads.
    body.on('error', ignoreError);
    return body;
  }

  private onBody(chunk: Buffer): void {
    const ex = this.reading;
    if (ex === null) return;
    const body = ex.body;
    if (body === null || !ex.bodyOpen) {
      // The response is already complete: read and drop the rest (see discard()).
      ex.discarded += chunk.length;
      if (ex.discarded > DISCARD_LIMIT) this.destroy();
      return;
    }
    this.readDeadline = Date.now() + this.limits.readTimeoutMs;
    if (!body.push(chunk) && !this.pausedForBody) {
      // Backpressure is ours, not the client's: no read deadline while paused.
      this.pausedForBody = true;
      this.readDeadline = 0;
      this.socket.pause();
    }
  }

  private onMessageComplete(): void {
    const ex = this.reading;
    if (ex === null) return; // a bodiless request: complete already
    this.reading = null;
    if (ex.bodyOpen) {
      ex.bodyOpen = false;
      ex.body?.push(null);
    }
    // The body's reader never asks for more after its end, so a pause for its backpressure would
    // outlive it and leave the next request on this connection unread until the idle timeout.
    if (this.pausedForBody) {
      this.pausedForBody = false;
      if (!this.pausedForQueue && !this.stopParsing) this.socket.resume();
    }
    this.readKind = READ_NONE;
    this.readDeadline = 0;
    if (ex.finished) this.afterExchange();
  }

  private parseFailed(err: ParseError): void {
    const ex = this.reading;
    if (ex !== null && !ex.bodyOpen && ex.finished) {
      // The rest of an answered request's body was being read and dropped (see exchangeDone) and its framing
      // broke: that request has its answer, and nothing after it can be framed. Close now; a refusal queued
      // behind it would wait for a message end that never comes (found by the fuzzers: the connection stayed
      // open, paused, until server.readTimeout).
      this.reading = null;
      this.queue.length = 0;
      this.endConnection();
      return;
    }
    if (ex !== null && ex.bodyOpen) {
      // Bad chunked framing inside a body: that request is broken, by the client.
      ex.bodyOpen = false;
      ex.keepAlive = false;
      ex.body?.destroy(new ClientError('QUICLB_BAD_BODY', `malformed request body (${err.code})`));
      this.stopParsing = true;
      this.socket.pause();
      return;
    }
    if (this.stopParsing || this.closed) return;
    if (err.code === 'HPE_HEADER_OVERFLOW') this.refuse(431, `the request header section exceeds server.maxHeaderSize (${this.limits.maxHeaderSize} bytes)`);
    else this.refuse(400, `malformed request (${err.code}${err.reason ? `: ${err.reason}` : ''})`);
  }

  /**
   * Answers a request the pipeline never sees, after the ones before it, and closes: nothing after a
   * malformed request can be trusted to be framed right.
   */
  private refuse(status: number, reason: string, extraHeaders = ''): void {
    this.stopParsing = true;
    this.socket.pause();
    const answer = errorResponse(status, reason).replace('\r\n\r\n', `\r\n${extraHeaders}\r\n`);
    if (this.queue.length === 0) this.finishWith(answer);
    else this.pendingRefusal = answer;
  }

  private finishWith(answer: string): void {
    this.endConnection(answer);
  }

  /**
   * Ends our side (after `answer`, if any) and keeps reading, dropping what arrives (nginx's lingering
   * close): a paused socket would never see the client's FIN, and the connection would stay counted open
   * until the write deadline. A client that never reads the answer or keeps sending is cut by the write
   * deadline or after DISCARD_LIMIT bytes.
   */
  private endConnection(answer?: string): void {
    if (this.closed || this.lingering) return;
    this.stopParsing = true;
    this.lingering = true;
    this.readDeadline = 0;
    const ex = this.reading;
    if (ex !== null && ex.bodyOpen) {
      ex.bodyOpen = false;
      ex.body?.destroy();
    }
    if (answer === undefined) this.socket.end();
    else this.socket.end(answer);
    this.writeDeadline = Date.now() + this.limits.writeTimeoutMs;
    this.pausedForBody = false;
    this.pausedForQueue = false;
    this.socket.resume();
  }

  // ---- answering --------------------------------------------------------------------------------

  private dispatch(ex: H1Exchange): void {
    try {
      this.opts.onRequest(ex.req, ex);
    } catch (err) {
      this.opts.logger.error({ err, path: ex.req.path }, 'request handler threw');
      if (!ex.headersSent) ex.respond(500, [['content-length', '0'], ['connection', 'close']]).end();
      else ex.abort(err as Error);
    }
  }

  exchangeDone(ex: H1Exchange, keepAlive: boolean): void {
    if (this.queue[0] !== ex) return;
    if (!keepAlive) {
      this.queue.length = 0;
      this.endConnection();
      return;
    }
    if (ex.bodyOpen) {
      // Answered before the body was read (401, 413, an early backend answer): read the rest and drop
      // it, as nginx does, so the connection stays usable; the pipeline no longer reads it.
      ex.bodyOpen = false;
      ex.body?.destroy();
      if (this.pausedForBody) {
        this.pausedForBody = false;
        if (!this.pausedForQueue) this.socket.resume();
      }
      this.readDeadline = Date.now() + this.limits.readTimeoutMs;
      return; // afterExchange() runs once the message is complete
    }
    if (this.reading === ex) return;
    this.afterExchange();
  }

  private afterExchange(): void {
    this.queue.shift();
    if (this.pendingRefusal !== undefined && this.queue.length === 0) {
      const answer = this.pendingRefusal;
      this.pendingRefusal = undefined;
      this.finishWith(answer);
      return;
    }
    if (this.pausedForQueue && this.queue.length < MAX_PIPELINED) {
      this.pausedForQueue = false;
      if (!this.pausedForBody && !this.stopParsing) this.socket.resume();
    }
    const next = this.queue[0];
    if (next !== undefined) {
      this.dispatch(next);
      return;
    }
    if (this.stopParsing || this.opts.draining()) {
      this.endConnection();
      return;
    }
    if (this.reading === null) {
      this.readKind = READ_IDLE;
      this.readDeadline = Date.now() + this.limits.idleTimeoutMs;
    }
  }

  get closing(): boolean {
    return this.opts.draining();
  }

  write(data: string | Uint8Array): boolean {
    if (this.closed) return true;
    const ok = typeof data === 'string' ? this.socket.write(data, 'latin1') : this.socket.write(data);
    if (!ok && this.writeDeadline === 0) this.writeDeadline = Date.now() + this.limits.writeTimeoutMs;
    return ok;
  }

  /** Coalesces what the current tick writes into one writev. */
  cork(): void {
    if (this.corked || this.closed) return;
    this.corked = true;
    this.socket.cork();
    process.nextTick(H1Connection.uncork, this);
  }

  private static uncork(conn: H1Connection): void {
    conn.corked = false;
    conn.socket.uncork();
  }

  onDrain(cb: () => void): void {
    if (this.closed || !this.socket.writableNeedDrain) process.nextTick(cb);
    else this.drainWaiters.push(cb);
  }

  private onSocketDrain(): void {
    this.writeDeadline = 0;
    const waiters = this.drainWaiters;
    if (waiters.length === 0) return;
    this.drainWaiters = [];
    this.runAll(waiters);
  }

  /** Runs callbacks of the pipeline; one that throws is logged and costs this connection only. */
  private runAll(cbs: Array<() => void>): void {
    for (const cb of cbs) {
      try {
        cb();
      } catch (err) {
        this.opts.logger.error({ err }, 'HTTP/1.1 callback threw');
        this.destroy(err as Error);
      }
    }
  }

  /** After a 101: the socket leaves this connection (no parser, no deadlines, no exchange). */
  detach(): Socket {
    this.detached = true;
    this.closed = true; // for this object: nothing more to parse, answer or time
    const socket = this.socket;
    socket.pause();
    socket.removeAllListeners('data');
    socket.removeAllListeners('drain');
    this.queue.length = 0;
    this.readDeadline = 0;
    this.writeDeadline = 0;
    if (this.upgradeHead !== undefined) socket.unshift(this.upgradeHead);
    this.upgradeHead = undefined;
    setImmediate(closeParser, this.parser);
    return socket;
  }

  destroy(reason?: Error): void {
    if (this.closed) return;
    this.socket.destroy(reason);
  }

  private onClose(): void {
    if (this.closed || this.detached) return;
    this.closed = true;
    const err = new ClientError('QUICLB_CLIENT_ABORTED', 'the client closed the connection');
    for (const ex of this.queue) {
      try {
        ex.clientGone(err);
      } catch (e) {
        this.opts.logger.error({ err: e }, 'client-abort callback threw');
      }
    }
    this.queue.length = 0;
    this.reading = null;
    const waiters = this.drainWaiters;
    this.drainWaiters = [];
    this.runAll(waiters);
    // close(), not free(): free() only runs the async-hook callbacks and leaves the native parser (and the
    // callbacks that hold this connection) allocated: measured 9 KiB leaked per closed connection. node:http
    // closes a parser it does not pool the same way, once the stack that may be inside it has unwound.
    setImmediate(closeParser, this.parser);
  }

  // ---- timeouts (called by the frontend's sweeper) ------------------------------------------------

  /** Checks this connection's deadlines; `now` is Date.now(). */
  check(now: number): void {
    if (this.closed) return;
    if (this.writeDeadline !== 0 && now > this.writeDeadline) {
      // server.writeTimeout: the client stopped reading.
      this.destroy(new Error('write timeout'));
      return;
    }
    if (this.readDeadline === 0 || now <= this.readDeadline) return;
    this.readDeadline = 0;
    switch (this.readKind) {
      case READ_IDLE:
        this.destroy();
        return;
      case READ_HEADER:
        // server.readTimeout: the header section did not complete in time (slowloris). RFC 9110 §15.5.9.
        if (this.queue.length === 0) this.refuse(408, 'the request header section did not arrive within server.readTimeout');
        else this.destroy();
        return;
      case READ_BODY: {
        const ex = this.reading;
        if (ex !== null && ex.bodyOpen) {
          ex.bodyOpen = false;
          ex.keepAlive = false;
          this.stopParsing = true;
          ex.body?.destroy(new ClientError('QUICLB_CLIENT_TIMEOUT', 'the request body paused longer than server.readTimeout'));
        } else {
          this.destroy(); // discarding an unwanted body that stalled
        }
        return;
      }
    }
  }

  /** Graceful shutdown: close now if idle, else after the response in flight. */
  drain(): void {
    // A detached socket is a WebSocket tunnel now: the shutdown closes it with close frames (src/proxy/websocket.ts).
    if (this.detached) return;
    if (this.queue.length === 0 && this.reading === null) this.endConnection();
  }
}

function ignoreError(): void {}

function closeParser(parser: NativeParser): void {
  try {
    parser.close();
  } catch {
    // already closed
  }
}

class BodyStream extends Readable {
  exchange: H1Exchange | undefined;
}
