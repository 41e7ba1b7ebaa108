// A pool of php-fpm connections for one backend: at most maxConnections sockets, kept-alive ones reused (most
// recently used first) by idempotent requests without a body (see replayable()), a bounded wait queue with a
// timeout when all are busy. The request API mirrors undici's
// Dispatcher.dispatch(options, handler) with v7+/v8 handlers, so the proxy drives HTTP and FastCGI backends with
// one handler class.
//
// Sizing: a kept-alive connection holds a php-fpm child for as long as it stays open, even idle (php-fpm reads
// the next request from the same socket). Keep maxConnections x shards at or below pm.max_children, or a queued
// connection waits in php-fpm's listen backlog until some idle connection times out (idleTimeoutMs).

import type { Dispatcher } from 'undici';
import { runExchange, type ExchangeOptions, type ExchangeOutcome, type FastCgiRequest } from './client.ts';
import { describeTarget, openConnection, type Connection, type FastCgiTarget } from './connection.ts';
import { FastCgiController } from './controller.ts';
import { FastCgiError } from './errors.ts';
import { DEFAULT_MAX_CGI_HEADER_SIZE } from './cgi-response.ts';

export const DEFAULT_MAX_CONNECTIONS = 8;

// RFC 9110 §9.2.2.
const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE', 'PUT', 'DELETE']);

/**
 * Whether a request may ride a kept-alive connection: only one that can be sent again when that connection
 * turns out dead, i.e. idempotent and without a body (a streamed body cannot be replayed). FastCGI has no way
 * to say "this connection closes now": a php-fpm child that exits after pm.max_requests answers with
 * END_REQUEST and then closes, a few ms later. Measured against php-fpm with pm.max_requests = 1: 4 of 8 queued
 * POSTs (3 or 4 per run) failed with ECONNRESET when they reused kept connections; every other request gets a new connection.
 */
function replayable(req: FastCgiRequest): boolean {
  if (req.body !== null || req.contentLength > 0) return false;
  for (const [name, value] of req.params) if (name === 'REQUEST_METHOD') return IDEMPOTENT.has(value);
  return false;
}

export interface FastCgiPoolOptions {
  target: FastCgiTarget;
  /** Open sockets at most; 0 or absent = DEFAULT_MAX_CONNECTIONS. */
  maxConnections?: number;
  /** Requests waiting for a connection at most (default 1024); more fail with QUICLB_FCGI_QUEUE_FULL. */
  maxQueue?: number;
  /** Longest wait for a connection (default 10 s); then QUICLB_FCGI_QUEUE_TIMEOUT. */
  queueTimeoutMs?: number;
  /** Default 5 s; then QUICLB_FCGI_CONNECT_TIMEOUT. */
  connectTimeoutMs?: number;
  /** Time for the CGI head once the request is sent, and longest stall while sending the body (default 60 s). */
  headersTimeoutMs?: number;
  /** Longest pause between response bytes while the handler is not paused (default 60 s). */
  bodyTimeoutMs?: number;
  /** A kept-alive connection idle this long is closed (default 4 s; see the sizing note above). */
  idleTimeoutMs?: number;
  /** FCGI_KEEP_CONN (default true). */
  keepAlive?: boolean;
  /** Bound on the CGI header block (default 64 KiB). */
  maxHeaderSize?: number;
  /** PHP's STDERR output (log lines); never sent to the client. Default: dropped. */
  onStderr?: (text: string) => void;
}

export interface FastCgiPoolStats {
  /** Open or opening sockets. */
  connections: number;
  busy: number;
  idle: number;
  connecting: number;
  queued: number;
}

interface Waiter {
  req: FastCgiRequest;
  handler: Dispatcher.DispatchHandler;
  controller: FastCgiController;
  settled: boolean;
  queueTimer?: NodeJS.Timeout;
  unlistenSignal?: () => void;
}

interface IdleEntry {
  conn: Connection;
  timer: NodeJS.Timeout;
  drop: () => void;
}

export class FastCgiPool {
  readonly target: FastCgiTarget;
  private readonly maxConnections: number;
  private readonly maxQueue: number;
  private readonly queueTimeoutMs: number;
  private readonly connectTimeoutMs: number;
  private readonly idleTimeoutMs: number;
  private readonly exchange: ExchangeOptions;
  private idle: IdleEntry[] = [];
  private busy = 0;
  private connecting = 0;
  private queue: Waiter[] = [];
  private readonly active = new Set<Waiter>();
  private closed = false;
  private closeWaiters: Array<() => void> = [];

  constructor(opts: FastCgiPoolOptions) {
    this.target = opts.target;
    this.maxConnections = opts.maxConnections !== undefined && opts.maxConnections > 0 ? opts.maxConnections : DEFAULT_MAX_CONNECTIONS;
    this.maxQueue = opts.maxQueue ?? 1024;
    this.queueTimeoutMs = opts.queueTimeoutMs ?? 10_000;
    this.connectTimeoutMs = opts.connectTimeoutMs ?? 5_000;
    this.idleTimeoutMs = opts.idleTimeoutMs ?? 4_000;
    this.exchange = {
      headersTimeoutMs: opts.headersTimeoutMs ?? 60_000,
      bodyTimeoutMs: opts.bodyTimeoutMs ?? 60_000,
      maxHeaderSize: opts.maxHeaderSize ?? DEFAULT_MAX_CGI_HEADER_SIZE,
      keepAlive: opts.keepAlive ?? true,
      onStderr: opts.onStderr ?? (() => {}),
    };
  }

  get stats(): FastCgiPoolStats {
    const idle = this.idle.length;
    return { connections: this.total(), busy: this.busy, idle, connecting: this.connecting, queued: this.queue.length };
  }

  /**
   * Runs one request. Never throws: every failure reaches handler.onResponseError (after onRequestStart, which
   * is called at once). Returns true, as undici's dispatch does when it accepted the request.
   */
  dispatch(req: FastCgiRequest, handler: Dispatcher.DispatchHandler): boolean {
    const w: Waiter = { req, handler, controller: new FastCgiController(), settled: false };
    w.controller.attach({ abort: (reason) => this.fail(w, reason), pause() {}, resume() {} });
    const signal = req.signal;
    if (signal !== undefined) {
      const onAbort = (): void => w.controller.abort(signal.reason instanceof Error ? signal.reason : undefined);
      signal.addEventListener('abort', onAbort, { once: true });
      w.unlistenSignal = () => signal.removeEventListener('abort', onAbort);
    }
    try {
      handler.onRequestStart?.(w.controller, { target: describeTarget(this.target) });
    } catch (err) {
      this.fail(w, err instanceof Error ? err : new Error(String(err)));
    }
    if (signal?.aborted) w.controller.abort(signal.reason instanceof Error ? signal.reason : undefined);
    if (w.settled) return true;
    if (this.closed) {
      this.fail(w, new FastCgiError('QUICLB_FCGI_POOL_CLOSED', `the FastCGI pool for ${describeTarget(this.target)} is closed`));
      return true;
    }
    this.assign(w);
    return true;
  }

  /** Stops taking requests: queued ones fail with QUICLB_FCGI_POOL_CLOSED, idle sockets close, running ones finish. */
  close(): Promise<void> {
    this.closed = true;
    for (const w of this.queue.splice(0)) this.fail(w, new FastCgiError('QUICLB_FCGI_POOL_CLOSED', `the FastCGI pool for ${describeTarget(this.target)} was closed`));
    for (const e of this.idle.splice(0)) this.dropIdle(e);
    return new Promise((resolve) => {
      this.closeWaiters.push(resolve);
      this.checkClosed();
    });
  }

  /** close(), and running requests are aborted with QUICLB_FCGI_POOL_CLOSED. */
  destroy(): Promise<void> {
    const done = this.close();
    for (const w of [...this.active]) w.controller.abort(new FastCgiError('QUICLB_FCGI_POOL_CLOSED', `the FastCGI pool for ${describeTarget(this.target)} was destroyed`));
    return done;
  }

  // ---- assignment ---------------------------------------------------------------------------------

  private total(): number {
    return this.idle.length + this.busy + this.connecting;
  }

  private assign(w: Waiter): void {
    const fresh = !replayable(w.req);
    if (!fresh && this.idle.length > 0) {
      const entry = this.idle.pop() as IdleEntry;
      this.takeIdle(entry);
      this.run(entry.conn, w);
    } else if (fresh && this.idle.length > 0) {
      // The longest-idle kept connection gives its slot (and its php-fpm child) to the new one, rather than
      // keeping one more idle connection pinning a child.
      this.closeIdle(this.idle[0]);
      this.connectFor(w);
    } else if (this.total() < this.maxConnections) {
      this.connectFor(w);
    } else if (this.queue.length >= this.maxQueue) {
      this.fail(w, new FastCgiError('QUICLB_FCGI_QUEUE_FULL', `${this.queue.length} requests already wait for a php-fpm connection to ${describeTarget(this.target)}`));
    } else {
      this.enqueue(w);
    }
  }

  private enqueue(w: Waiter): void {
    this.queue.push(w);
    w.controller.attach({ abort: (reason) => this.fail(w, reason), pause() {}, resume() {} });
    if (this.queueTimeoutMs > 0) {
      w.queueTimer = setTimeout(() => {
        const ms = this.queueTimeoutMs;
        const err = new FastCgiError(
          'QUICLB_FCGI_QUEUE_TIMEOUT',
          `all ${this.maxConnections} php-fpm connections to ${describeTarget(this.target)} stayed busy for ${ms} ms: raise maxConnections (and php-fpm's pm.max_children) or add backends`,
        );
        this.fail(w, err);
      }, this.queueTimeoutMs);
    }
  }

  private connectFor(w: Waiter): void {
    this.connecting++;
    w.controller.attach({ abort: (reason) => this.fail(w, reason), pause() {}, resume() {} });
    openConnection(this.target, this.connectTimeoutMs).then(
      (conn) => {
        this.connecting--;
        if (w.settled) this.offer(conn);
        else this.run(conn, w);
      },
      (err: Error) => {
        this.connecting--;
        this.fail(w, err);
        this.fillFromQueue();
        this.checkClosed();
      },
    );
  }

  private run(conn: Connection, w: Waiter): void {
    this.busy++;
    this.active.add(w);
    runExchange(conn, w.req, w.handler, w.controller, this.exchange, (outcome: ExchangeOutcome) => {
      this.busy--;
      this.active.delete(w);
      if (outcome === 'retry' && !this.closed && !w.controller.aborted) {
        // The kept connection was stale; this request never reached PHP. A fresh socket, never a second retry.
        this.connectFor(w);
        return;
      }
      this.settle(w);
      if (outcome === 'reuse') {
        this.offer(conn);
        return;
      }
      conn.socket.destroy();
      this.fillFromQueue();
      this.checkClosed();
    });
  }

  /** A free connection: the longest-waiting request gets it, else it waits idle. */
  private offer(conn: Connection): void {
    if (this.closed || conn.socket.destroyed) {
      conn.socket.destroy();
      this.fillFromQueue();
      this.checkClosed();
      return;
    }
    const next = this.nextWaiter();
    if (next !== undefined) {
      if (replayable(next.req)) {
        this.run(conn, next);
      } else {
        conn.socket.destroy();
        this.connectFor(next);
      }
      return;
    }
    const entry: IdleEntry = { conn, timer: setTimeout(() => this.dropIdle(entry), this.idleTimeoutMs), drop: () => this.dropIdle(entry) };
    entry.timer.unref();
    // An idle kept connection must stay silent: any byte, end or error retires it.
    conn.socket.on('data', entry.drop);
    conn.socket.on('end', entry.drop);
    conn.socket.on('close', entry.drop);
    conn.socket.on('error', entry.drop);
    conn.socket.resume();
    this.idle.push(entry);
  }

  private takeIdle(e: IdleEntry): void {
    clearTimeout(e.timer);
    const s = e.conn.socket;
    s.removeListener('data', e.drop);
    s.removeListener('end', e.drop);
    s.removeListener('close', e.drop);
    s.removeListener('error', e.drop);
  }

  private dropIdle(e: IdleEntry): void {
    this.closeIdle(e);
    this.fillFromQueue();
    this.checkClosed();
  }

  private closeIdle(e: IdleEntry): void {
    this.takeIdle(e);
    const i = this.idle.indexOf(e);
    if (i >= 0) this.idle.splice(i, 1);
    e.conn.socket.destroy();
  }

  private nextWaiter(): Waiter | undefined {
    while (this.queue.length > 0) {
      const w = this.queue.shift() as Waiter;
      clearTimeout(w.queueTimer);
      if (!w.settled) return w;
    }
    return undefined;
  }

  /** Slots freed (a socket closed or failed to open): queued requests get new connections. */
  private fillFromQueue(): void {
    while (!this.closed && this.queue.length > 0 && this.total() < this.maxConnections) {
      const w = this.nextWaiter();
      if (w === undefined) return;
      this.connectFor(w);
    }
  }

  // ---- endings ------------------------------------------------------------------------------------

  private settle(w: Waiter): void {
    w.settled = true;
    clearTimeout(w.queueTimer);
    w.unlistenSignal?.();
  }

  /** A failure before the request ran on a connection (queued, connecting, refused, aborted early). */
  private fail(w: Waiter, err: Error): void {
    if (w.settled) return;
    this.settle(w);
    const i = this.queue.indexOf(w);
    if (i >= 0) this.queue.splice(i, 1);
    try {
      w.handler.onResponseError?.(w.controller, err);
    } catch {
      // Nothing more can be done for this request.
    }
  }

  private checkClosed(): void {
    if (!this.closed || this.busy > 0 || this.connecting > 0) return;
    for (const resolve of this.closeWaiters.splice(0)) resolve();
  }
}
