// One client HTTP/2 connection: a node:http2 server session on an already-accepted TLS socket, its
// streams turned into requests, its idle timeout, and its share of the Rapid Reset budgets.
//
// Requests are dispatched once per socket read burst (setImmediate), not from the 'stream' event: a
// stream opened and reset in the same read (CVE-2023-44487's pattern, and what node's client sends for
// request() + close()) is gone by then and never becomes a backend request.
//
// A connection is released (forgotten by the frontend, its streams' exchanges told the client is gone) on
// the first of the session's 'close', the socket's 'close' and destroy(). node does not always deliver the
// first two. A write into the TLS socket that fails at once (the client's TCP RST arrived while quiclb was
// still reading its last bytes) stays "in progress" for ever in node 24's TLSWrap (EncOut returns on the
// error without clearing write_size_; nodejs/node#55804 is the same flaw), and the session waits for that
// write: it stops reading (so the reset is never read), hands nothing more to the socket, and once
// destroyed (nghttp2 reports a protocol error) never closes the socket nor emits 'close' (traced with
// NODE_DEBUG_NATIVE=HTTP2SESSION,TLS). So the connection checks its transport (probe(): do our frames
// still leave?) whenever the client seems quiet or gone (an upload or a response stalled for a second, a
// stream timed out, new requests, idle time, the session closing), a destroyed session's socket gets
// CLOSE_GRACE_MS (closeDestroyed()), and every timeout path ends in destroy().
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

/**
 * How long a connection closed for abuse, or whose session node destroyed (a protocol error), may take to
 * flush its GOAWAY before the socket is destroyed.
 */
const CLOSE_GRACE_MS = 1000;

/**
 * When a probe looks whether its PING left (see H2Connection.probe), and looks again while the kernel holds
 * unread bytes. node hands queued frames to the socket on the next turn of the event loop unless a write is
 * still under way, so a second is a wide margin for a live socket.
 */
const PROBE_CHECK_MS = 1000;

/**
 * New requests start a probe when none started for this long: a transport that died in the very read that
 * carried the requests is found then, rather than when their responses fail to go out (a backend can take
 * its time). At most one PING per this long on a busy connection.
 */
const DISPATCH_PROBE_INTERVAL_MS = 2000;

/** One transport check (see H2Connection.probe). */
interface Probe {
  readonly startedAt: number;
  acked: boolean;
  /** The last look found frames queued and nothing in the TCP socket's write queue. */
  stuck: boolean;
}

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
  /** close(), destroy() or enhanceYourCalm() started, or the socket closed. */
  private closeStarted = false;
  /** Over a reset budget: nothing more is dispatched and the session is being destroyed. */
  private calm = false;
  /** ctx.onClosed ran: the connection is forgotten, whatever node still does with the session. */
  private released = false;
  /** The streams not yet closed (node's 'close' event), dispatched or not. */
  private readonly exchanges = new Set<H2Exchange>();
  /** A transport check is under way (see probe()). */
  private probeTimer: NodeJS.Timeout | undefined;
  private lastProbeAt = 0;
  private readonly ctx: ConnectionContext;
  private readonly socket: TLSSocket;
  /** Destroys the socket if a close we started has not finished by then (at forceAt). */
  private forceTimer: NodeJS.Timeout | undefined;
  private forceAt = 0;
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
    socket.once('close', () => this.release());
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
    this.session.once('close', () => this.release());
    this.watchClosing();
    // The first read (the client's preface and first frames, often its requests too) may already be the
    // last: a client that sends and resets at once leaves a session stuck from its first write.
    this.probe();
    // server.idleTimeout: also bounds a connection that never sends a complete request.
    this.idleTimer = ctx.limits.idleTimeoutMs > 0 ? setTimeout(onIdle, ctx.limits.idleTimeoutMs, this) : undefined;
  }

  /**
   * node closes a session itself (the client's GOAWAY(NO_ERROR), a frame it could not send) and destroys
   * one on an error (nghttp2 reported a protocol error or a flood, the client's GOAWAY with an error code),
   * always through the session's own close() and destroy() methods, and emits nothing until the socket
   * closes, which after a stuck write (see the top of this file) never happens. Wrapping the two methods is
   * the only way to learn of it: a closing session is probed, a destroyed one's socket gets CLOSE_GRACE_MS.
   */
  private watchClosing(): void {
    const session = this.session;
    const close = session.close;
    const destroy = session.destroy;
    session.close = (callback?: () => void): void => {
      close.call(session, callback);
      this.probe();
    };
    session.destroy = (error?: Error, code?: number): void => {
      destroy.call(session, error, code);
      if (error != null) this.closeDestroyed();
    };
  }

  /** The connection as a whole is going away: its streams closing now are not client resets. */
  get closing(): boolean {
    return this.closeStarted || this.session.destroyed;
  }

  /** GOAWAY(NO_ERROR); the session closes once its open streams end (RFC 9113 §6.8). */
  close(): void {
    try {
      this.session.close();
    } catch (err) {
      this.logger.debug({ err }, 'HTTP/2 session close failed');
    }
  }

  /** Closes the session and its socket now, cancelling open streams, and releases the connection. */
  destroy(): void {
    this.closeStarted = true;
    try {
      this.session.destroy();
    } catch (err) {
      this.logger.debug({ err }, 'HTTP/2 session destroy failed');
    }
    // Also closes the raw TCP socket under it (the shard's connection gauge counts that one).
    this.socket.destroy();
    // Not left to the 'close' events: a session whose write never finished may never emit one.
    this.release();
  }

  /** The connection is gone: its streams' clients are gone, its timers stop, the frontend forgets it. */
  private release(): void {
    this.closeStarted = true;
    if (this.released) return;
    this.released = true;
    if (this.idleTimer) clearTimeout(this.idleTimer);
    if (this.forceTimer) clearTimeout(this.forceTimer);
    if (this.probeTimer) clearTimeout(this.probeTimer);
    this.queue = [];
    // node closes the streams too when it learns of the close; their exchanges then ignore the news.
    for (const ex of this.exchanges) ex.onConnectionGone();
    try {
      this.ctx.onClosed(this);
    } catch (err) {
      this.logger.error({ err }, 'HTTP/2 connection close handler threw');
    }
  }

  /**
   * Checks that the transport still takes bytes. A PING (RFC 9113 §6.7) that is neither acknowledged nor
   * handed to the socket after PROBE_CHECK_MS is stuck: either node's writes never reach the TCP socket
   * (nothing waits in its write queue: the stuck TLS write of the top of this file), and the connection is
   * dead once a second look PROBE_CHECK_MS later finds the same (a frame queued in the very turn of the
   * first look is not a stuck one); or the kernel holds bytes the client has not read yet, and the client
   * gets server.writeTimeout from the probe's start to take them before the connection is destroyed. A PING
   * that went out settles it: the transport works, whether or not the client answers, and the usual
   * timeouts apply.
   */
  probe(): void {
    if (this.released || this.probeTimer) return;
    const ping: Probe = { startedAt: Date.now(), acked: false, stuck: false };
    this.lastProbeAt = ping.startedAt;
    // A closing session sends no PING; its GOAWAY is in the queue, which is all the check needs.
    if (!this.session.closed && !this.session.destroyed) {
      try {
        this.session.ping((err: Error | null) => {
          if (!err) ping.acked = true;
        });
      } catch (err) {
        this.logger.debug({ err }, 'HTTP/2 PING not sent');
      }
    }
    this.probeTimer = setTimeout(checkProbe, PROBE_CHECK_MS, this, ping);
  }

  /** PROBE_CHECK_MS after probe(), and after the writes node scheduled in that turn of the event loop. */
  checkProbe(ping: Probe): void {
    this.probeTimer = undefined;
    if (this.released || ping.acked) return;
    if (this.session.destroyed) {
      this.closeDestroyed();
      return;
    }
    if (this.session.state.outboundQueueSize === 0) return;
    if (tcpWriteQueueSize(this.socket) === 0) {
      if (ping.stuck) {
        this.logger.debug({ client: this.remoteAddress }, 'HTTP/2 frames never reach the socket (a TLS write stuck after the client reset): connection destroyed');
        this.destroy();
        return;
      }
      ping.stuck = true;
      this.probeTimer = setTimeout(checkProbe, PROBE_CHECK_MS, this, ping);
      return;
    }
    ping.stuck = false;
    if (this.writeTimeoutMs <= 0) return;
    if (Date.now() - ping.startedAt < this.writeTimeoutMs) {
      this.probeTimer = setTimeout(checkProbe, PROBE_CHECK_MS, this, ping);
      return;
    }
    this.logger.debug({ client: this.remoteAddress, writeTimeoutMs: this.writeTimeoutMs }, 'HTTP/2 client took no bytes for server.writeTimeout: connection destroyed');
    this.destroy();
  }

  /**
   * node closes a session's socket with end() and waits for the write side to flush, also after
   * session.destroy(): a client that reads nothing would keep the connection, and what is buffered for
   * it, for ever (measured: still open long after GOAWAY). Past `ms` the socket is destroyed.
   */
  private closeWithin(ms: number): void {
    if (ms <= 0) return;
    const at = Date.now() + ms;
    if (this.forceTimer) {
      if (this.forceAt <= at) return;
      clearTimeout(this.forceTimer);
    }
    this.forceAt = at;
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

  onStreamClosed(ex: H2Exchange): void {
    this.exchanges.delete(ex);
    if (this.exchanges.size === 0 && !this.closing) this.idleTimer?.refresh();
  }

  /**
   * The session is destroyed (by node on an error, or found so by a timeout or probe) and the socket still
   * open: node closes it once the session's last write finishes, which can be never (see the top of this
   * file). The streams are gone already; the socket gets CLOSE_GRACE_MS to flush the GOAWAY.
   */
  private closeDestroyed(): void {
    if (!this.released) this.closeWithin(CLOSE_GRACE_MS);
  }

  // ---- internals ----

  private readonly onStream = (stream: ServerHttp2Stream, _headers: unknown, _flags: number, raw: string[]): void => {
    let ex: H2Exchange | undefined;
    try {
      ex = new H2Exchange(stream, this);
      this.exchanges.add(ex);
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
    let dispatched = 0;
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
      dispatched++;
      try {
        this.ctx.onRequest(req, ex);
      } catch (err) {
        this.logger.error({ err, path: head.path }, 'request handler threw on an HTTP/2 stream');
        if (ex.headersSent) ex.abort();
        else ex.answer(500, '500 Internal Server Error: quiclb failed to handle this request.');
      }
    }
    if (dispatched > 0 && Date.now() - this.lastProbeAt >= DISPATCH_PROBE_INTERVAL_MS) this.probe();
  }

  onIdle(): void {
    if (this.session.destroyed) {
      this.closeDestroyed();
      return;
    }
    if (this.closing) return;
    if (this.exchanges.size > 0) {
      // Not idle, but quiet for idleTimeout: a transport that died under a slow request (a long poll) is
      // found here rather than when the response finally fails to go out.
      this.probe();
      this.idleTimer?.refresh();
      return;
    }
    this.logger.debug({ client: this.remoteAddress }, 'HTTP/2 connection idle: GOAWAY');
    // Probes too (see watchClosing): a GOAWAY that cannot leave at all is found within seconds.
    this.close();
    // Only GOAWAY (and what was already written) is left to send: server.writeTimeout bounds that.
    this.closeWithin(this.writeTimeoutMs > 0 ? this.writeTimeoutMs : this.ctx.limits.idleTimeoutMs);
  }

  enhanceYourCalm(): void {
    this.closeStarted = true;
    try {
      // GOAWAY with ENHANCE_YOUR_CALM (RFC 9113 §7), open streams cancelled, and the session closed gracefully:
      // destroying the socket at once, with the client's frames still unread, makes the kernel answer with a
      // RST that can discard the GOAWAY before the client reads it (seen in tests). The socket is destroyed
      // after CLOSE_GRACE_MS in any case.
      this.session.goaway(NGHTTP2_ENHANCE_YOUR_CALM);
      for (const ex of this.queue) ex.refuse();
      this.queue = [];
      this.session.close();
    } catch (err) {
      this.logger.debug({ err }, 'HTTP/2 session close failed');
    }
    this.closeWithin(CLOSE_GRACE_MS);
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

/**
 * Bytes libuv holds for the TCP socket under `socket` (TLS records the kernel has not taken yet), or
 * undefined where node does not say. Not public API: TLSSocket._parent is the net.Socket it wraps, and
 * writeQueueSize on its TCP handle is what net.Socket itself reads. test/security/h2-dead-transport.test.ts
 * fails should a node upgrade take it away (the probe then waits for server.writeTimeout instead).
 */
function tcpWriteQueueSize(socket: TLSSocket): number | undefined {
  const raw = (socket as unknown as { _parent?: { _handle?: { writeQueueSize?: unknown } | null } })._parent;
  const size = raw?._handle?.writeQueueSize;
  return typeof size === 'number' ? size : undefined;
}

function checkProbe(conn: H2Connection, ping: Probe): void {
  // setImmediate: runs after the writes node scheduled in this turn of the event loop (they go first).
  setImmediate(() => {
    try {
      conn.checkProbe(ping);
    } catch (err) {
      conn.logger.error({ err }, 'HTTP/2 transport check failed');
    }
  });
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
