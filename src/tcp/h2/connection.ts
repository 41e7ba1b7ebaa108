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

/**
 * SETTINGS frames a client may send per resetWindowMs; browsers send one or two per connection. nghttp2's
 * own guard (CVE-2019-9515: at most 1000 queued ACKs) acts only once the socket is congested, so a client
 * that keeps reading can make the server answer SETTINGS frames for ever (measured: 400,000 empty SETTINGS
 * frames, all acknowledged).
 */
const MAX_SETTINGS_PER_WINDOW = 50;

/** How long a connection closed for abuse may take to flush its GOAWAY before the socket is destroyed. */
const ABUSE_CLOSE_GRACE_MS = 1000;

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
  private readonly socket: TLSSocket;
  /** Destroys the socket if a close we started has not finished by then. */
  private forceTimer: NodeJS.Timeout | undefined;
  private readonly resets: ResetWindow;
  private readonly settingsFrames: ResetWindow;
  /** undefined when server.idleTimeout is 0 (no idle limit). */
  private readonly idleTimer: NodeJS.Timeout | undefined;
  private queue: H2Exchange[] = [];
  private flushScheduled = false;

  constructor(socket: TLSSocket, ctx: ConnectionContext, connectionKey: string) {
    this.ctx = ctx;
    this.socket = socket;
    this.logger = ctx.logger;
    this.readTimeoutMs = ctx.limits.readTimeoutMs;
    this.writeTimeoutMs = ctx.limits.writeTimeoutMs;
    this.connectionKey = connectionKey;
    // Read now: a closed socket no longer knows its addresses.
    this.remoteAddress = normalizeIp(socket.remoteAddress ?? '');
    this.remotePort = socket.remotePort ?? 0;
    this.localPort = socket.localPort ?? 0;
    this.resets = new ResetWindow(ctx.limits.maxResetsPerWindow, ctx.limits.resetWindowMs);
    this.settingsFrames = new ResetWindow(MAX_SETTINGS_PER_WINDOW, ctx.limits.resetWindowMs);
    // Registered before the session's own listener, which closes every stream: those closes are the
    // connection going away, not client resets.
    socket.once('close', () => {
      this.closing = true;
    });
    socket.on('error', ignore);
    this.session = http2.performServerHandshake(socket, ctx.sessionOptions);
    this.session.on('stream', this.onStream);
    // One event per SETTINGS frame received (node calls into JavaScript for it only with a listener).
    this.session.on('remoteSettings', () => {
      if (!this.calm && !this.settingsFrames.hit(Date.now())) this.tooMuch('SETTINGS flood (CVE-2019-9515)');
    });
    this.session.on('error', (err: Error) => this.logger.debug({ err: err.message, client: this.remoteAddress }, 'HTTP/2 session error'));
    this.session.on('frameError', (type: number, code: number, id: number) =>
      this.logger.debug({ type, code, stream: id, client: this.remoteAddress }, 'HTTP/2 frame not sent'),
    );
    this.session.once('close', () => {
      this.closing = true;
      if (this.idleTimer) clearTimeout(this.idleTimer);
      if (this.forceTimer) clearTimeout(this.forceTimer);
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

  /** Closes the session and its socket now, cancelling open streams. */
  destroy(): void {
    this.closing = true;
    try {
      this.session.destroy();
    } catch (err) {
      this.logger.debug({ err }, 'HTTP/2 session destroy failed');
    }
    this.socket.destroy();
  }

  /**
   * node closes a session's socket with end() and waits for the write side to flush, also after
   * session.destroy(): a client that reads nothing would keep the connection, and what is buffered for
   * it, for ever (measured: still open long after GOAWAY). Past `ms` the socket is destroyed.
   */
  private closeWithin(ms: number): void {
    if (this.forceTimer || ms <= 0) return;
    this.forceTimer = setTimeout(forceClose, ms, this);
  }

  // ---- ExchangeOwner ----

  onClientReset(): void {
    if (this.calm) return;
    const now = Date.now();
    const connectionOk = this.resets.hit(now);
    const clientOk = this.ctx.clientResets.spend(this.remoteAddress, now);
    if (connectionOk && clientOk) return;
    // Once a connection has spent its budget (warned), the address's other connections close at their
    // first reset: one line each would be one line per attacking connection.
    this.tooMuch('stream resets (CVE-2023-44487)', connectionOk);
  }

  /** Stops dispatching and closes the connection with GOAWAY(ENHANCE_YOUR_CALM) (RFC 9113 §7). */
  private tooMuch(what: string, quiet = false): void {
    this.calm = true;
    const { maxResetsPerWindow, resetWindowMs } = this.ctx.limits;
    // A connection closed for abuse costs its address a whole connection's budget more: an attacker that
    // reconnects after each GOAWAY runs out of its address budget after a few connections, and from then on
    // each new connection closes at its first reset.
    this.ctx.clientResets.spend(this.remoteAddress, Date.now(), maxResetsPerWindow);
    const fields = { client: this.remoteAddress, what, maxResetsPerWindow, resetWindowMs };
    const msg = 'HTTP/2 client over its budget: connection closed with GOAWAY ENHANCE_YOUR_CALM';
    if (quiet) this.logger.debug(fields, msg);
    else this.logger.warn(fields, msg);
    // Not from inside the nghttp2 callback that reported it.
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
      if (head.websocket) ex.prepareTunnel();
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
      if (head.websocket) req.upgrade = 'websocket';
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
    // Only GOAWAY (and what was already written) is left to send: server.writeTimeout bounds that.
    this.closeWithin(this.writeTimeoutMs > 0 ? this.writeTimeoutMs : this.ctx.limits.idleTimeoutMs);
  }

  enhanceYourCalm(): void {
    this.closing = true;
    try {
      // GOAWAY with ENHANCE_YOUR_CALM (RFC 9113 §7), open streams cancelled, and the session closed gracefully:
      // destroying the socket at once, with the client's frames still unread, makes the kernel answer with a
      // RST that can discard the GOAWAY before the client reads it (seen in tests). The socket is destroyed
      // after ABUSE_CLOSE_GRACE_MS in any case.
      this.session.goaway(NGHTTP2_ENHANCE_YOUR_CALM);
      for (const ex of this.queue) ex.refuse();
      this.queue = [];
      this.session.close();
    } catch (err) {
      this.logger.debug({ err }, 'HTTP/2 session close failed');
    }
    this.closeWithin(ABUSE_CLOSE_GRACE_MS);
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

function forceClose(conn: H2Connection): void {
  try {
    conn.destroy();
  } catch (err) {
    conn.logger.error({ err }, 'HTTP/2 connection destroy failed');
  }
}

function enhanceYourCalm(conn: H2Connection): void {
  try {
    conn.enhanceYourCalm();
  } catch (err) {
    conn.logger.error({ err }, 'HTTP/2 connection close failed');
  }
}
