// One client HTTP/2 connection: a node:http2 server session on an already-accepted TLS socket, its
// streams turned into requests, its idle timeout, and its share of the Rapid Reset budgets.
//
// Requests are dispatched once per socket read burst (setImmediate), not from the 'stream' event: a
// stream opened and reset in the same read (CVE-2023-44487's pattern, and what node's client sends for
// request() + close()) is gone by then and never becomes a backend request.
import http2 from 'node:http2';
import type { ServerHttp2Session, ServerHttp2Stream, ServerSessionOptions } from 'node:http2';
import type { TLSSocket } from 'node:tls';
import type { FrontendLimits } from '../../config/limits.ts';
import type { FrontRequest, RequestHandler } from '../../shared/http-types.ts';
import type { Logger } from '../../shared/logger.ts';
import { normalizeIp } from '../../shared/ip.ts';
import { H2Exchange } from './exchange.ts';
import type { ExchangeOwner } from './exchange.ts';
import { readRequestHead } from './request-head.ts';
import { ResetWindow } from './reset-budget.ts';
import type { ClientResetBudget } from './reset-budget.ts';

const { NGHTTP2_ENHANCE_YOUR_CALM, NGHTTP2_INTERNAL_ERROR } = http2.constants;

/** What every connection of one frontend shares. */
export interface ConnectionContext {
  limits: FrontendLimits;
  sessionOptions: ServerSessionOptions;
  shard: number;
  onRequest: RequestHandler;
  logger: Logger;
  clientResets: ClientResetBudget;
  onClosed(conn: H2Connection): void;
}

// RFC 9110 §15.5.6: a 405 lists what is allowed.
const ALLOW: Array<[string, string]> = [['allow', 'GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS']];

export class H2Connection implements ExchangeOwner {
  readonly session: ServerHttp2Session;
  readonly logger: Logger;
  readonly readTimeoutMs: number;
  readonly writeTimeoutMs: number;
  readonly remoteAddress: string;
  readonly remotePort: number;
  readonly localPort: number;
  readonly connectionKey: string;
  closing = false;
  /** Over a reset budget: nothing more is dispatched and the session is being destroyed. */
  private calm = false;
  private open = 0;
  private readonly ctx: ConnectionContext;
  private readonly resets: ResetWindow;
  /** undefined when server.idleTimeout is 0 (no idle limit). */
  private readonly idleTimer: NodeJS.Timeout | undefined;
  private queue: H2Exchange[] = [];
  private flushScheduled = false;

  constructor(socket: TLSSocket, ctx: ConnectionContext, connectionKey: string) {
    this.ctx = ctx;
    this.logger = ctx.logger;
    this.readTimeoutMs = ctx.limits.readTimeoutMs;
    this.writeTimeoutMs = ctx.limits.writeTimeoutMs;
    this.connectionKey = connectionKey;
    // Read now: a closed socket no longer knows its addresses.
    this.remoteAddress = normalizeIp(socket.remoteAddress ?? '');
    this.remotePort = socket.remotePort ?? 0;
    this.localPort = socket.localPort ?? 0;
    this.resets = new ResetWindow(ctx.limits.maxResetsPerWindow, ctx.limits.resetWindowMs);
    // Registered before the session's own listener, which closes every stream: those closes are the
    // connection going away, not client resets.
    socket.once('close', () => {
      this.closing = true;
    });
    socket.on('error', ignore);
    this.session = http2.performServerHandshake(socket, ctx.sessionOptions);
    this.session.on('stream', this.onStream);
    this.session.on('error', (err: Error) => this.logger.debug({ err: err.message, client: this.remoteAddress }, 'HTTP/2 session error'));
    this.session.on('frameError', (type: number, code: number, id: number) =>
      this.logger.debug({ type, code, stream: id, client: this.remoteAddress }, 'HTTP/2 frame not sent'),
    );
    this.session.once('close', () => {
      this.closing = true;
      if (this.idleTimer) clearTimeout(this.idleTimer);
      try {
        ctx.onClosed(this);
      } catch (err) {
        this.logger.error({ err }, 'HTTP/2 connection close handler threw');
      }
    });
    // server.idleTimeout: also bounds a connection that never sends a complete request.
    this.idleTimer = ctx.limits.idleTimeoutMs > 0 ? setTimeout(onIdle, ctx.limits.idleTimeoutMs, this) : undefined;
  }

  /** GOAWAY(NO_ERROR); the session closes once its open streams end (RFC 9113 §6.8). */
  close(): void {
    try {
      this.session.close();
    } catch (err) {
      this.logger.debug({ err }, 'HTTP/2 session close failed');
    }
  }

  destroy(): void {
    this.closing = true;
    try {
      this.session.destroy();
    } catch (err) {
      this.logger.debug({ err }, 'HTTP/2 session destroy failed');
    }
  }

  // ---- ExchangeOwner ----

  onClientReset(): void {
    if (this.calm) return;
    const now = Date.now();
    const connectionOk = this.resets.hit(now);
    const clientOk = this.ctx.clientResets.spend(this.remoteAddress, now);
    if (connectionOk && clientOk) return;
    this.calm = true;
    const { maxResetsPerWindow, resetWindowMs } = this.ctx.limits;
    const fields = { client: this.remoteAddress, maxResetsPerWindow, resetWindowMs };
    const msg = 'HTTP/2 client resets too many streams (CVE-2023-44487): connection closed with GOAWAY ENHANCE_YOUR_CALM';
    // Once a connection has spent its budget (warned), the address's other connections close at their
    // first reset: one line each would be one line per attacking connection.
    if (!connectionOk) this.logger.warn({ ...fields, over: 'connection' }, msg);
    else this.logger.debug({ ...fields, over: 'client address' }, msg);
    // Not from inside nghttp2's callback that reported the reset.
    setImmediate(enhanceYourCalm, this);
  }

  onStreamClosed(): void {
    if (--this.open === 0 && !this.closing) this.idleTimer?.refresh();
  }

  // ---- internals ----

  private readonly onStream = (stream: ServerHttp2Stream, _headers: unknown, _flags: number, raw: string[]): void => {
    this.open++;
    let ex: H2Exchange | undefined;
    try {
      ex = new H2Exchange(stream, this);
      if (this.calm) {
        ex.refuse();
        return;
      }
      const head = readRequestHead(raw, this.ctx.limits);
      if (head.kind === 'reject') {
        ex.answer(head.status, head.reason, head.status === 405 ? ALLOW : []);
        return;
      }
      ex.head = head;
      this.queue.push(ex);
      if (!this.flushScheduled) {
        this.flushScheduled = true;
        setImmediate(flush, this);
      }
    } catch (err) {
      this.logger.error({ err }, 'HTTP/2 stream setup failed');
      try {
        if (ex) ex.abort();
        else {
          this.open--;
          stream.on('error', ignore);
          stream.close(NGHTTP2_INTERNAL_ERROR);
        }
      } catch {
        // the stream is gone already
      }
    }
  };

  /** Dispatches the streams opened since the last burst that are still open. */
  flush(): void {
    this.flushScheduled = false;
    const queue = this.queue;
    this.queue = [];
    for (const ex of queue) {
      if (ex.isGone) continue;
      if (this.calm) {
        ex.refuse();
        continue;
      }
      const head = ex.head!;
      const req: FrontRequest = {
        protocol: 'HTTP/2',
        method: head.method,
        scheme: 'https',
        authority: head.authority,
        path: head.path,
        headers: head.headers,
        body: ex.body,
        remoteAddress: this.remoteAddress,
        remotePort: this.remotePort,
        localPort: this.localPort,
        connectionKey: this.connectionKey,
        shard: this.ctx.shard,
      };
      ex.head = undefined;
      try {
        this.ctx.onRequest(req, ex);
      } catch (err) {
        this.logger.error({ err, path: head.path }, 'request handler threw on an HTTP/2 stream');
        if (ex.headersSent) ex.abort();
        else ex.answer(500, '500 Internal Server Error: quiclb failed to handle this request.');
      }
    }
  }

  onIdle(): void {
    if (this.open > 0 || this.closing) return;
    this.logger.debug({ client: this.remoteAddress }, 'HTTP/2 connection idle: GOAWAY');
    this.close();
  }

  enhanceYourCalm(): void {
    this.closing = true;
    try {
      // GOAWAY with ENHANCE_YOUR_CALM (RFC 9113 §7), then the socket is closed; open streams are cancelled.
      this.session.destroy(new Error('too many stream resets'), NGHTTP2_ENHANCE_YOUR_CALM);
    } catch (err) {
      this.logger.debug({ err }, 'HTTP/2 session destroy failed');
    }
  }
}

function ignore(): void {}

function flush(conn: H2Connection): void {
  try {
    conn.flush();
  } catch (err) {
    conn.logger.error({ err }, 'HTTP/2 dispatch failed');
  }
}

function onIdle(conn: H2Connection): void {
  try {
    conn.onIdle();
  } catch (err) {
    conn.logger.error({ err }, 'HTTP/2 idle handling failed');
  }
}

function enhanceYourCalm(conn: H2Connection): void {
  try {
    conn.enhanceYourCalm();
  } catch (err) {
    conn.logger.error({ err }, 'HTTP/2 connection close failed');
  }
}
