// WebSocket proxying: a client's opening handshake (HTTP/1.1 Upgrade, or HTTP/2 / HTTP/3 extended CONNECT
// with :protocol websocket, RFC 8441 / RFC 9220) becomes an HTTP/1.1 Upgrade request to a backend chosen as
// for any request (routes, stickiness, health, maxConnections), sent with undici's dispatch({ upgrade }).
// A 101 turns both into a Tunnel (websocket-tunnel.ts); any other answer goes to the client as a normal
// response, and a backend that cannot be reached is answered 502/504 (retried once on another backend when
// loadBalancer.retryIdempotent, as a GET is). One instance per shard, which also owns the open tunnels:
// they count as connections of their backend (B_ACTIVE, so maxConnections and least_connections see them),
// in /stats per shard, and are closed with close frames (1001) when the shard shuts down.
//
// Handshake fields (RFC 6455 §4, RFC 8441 §5): an HTTP/1.1 client's Sec-WebSocket-Key goes to the backend
// and the backend's Sec-WebSocket-Accept back to it, untouched; an HTTP/2 or HTTP/3 client sends no key and
// gets no accept, so quiclb sends a fresh key (and Sec-WebSocket-Version 13 if the client named none) and
// checks the backend's accept itself. Sec-WebSocket-Protocol and -Extensions pass both ways; quiclb never
// looks inside frames, so whatever the ends negotiate (permessage-deflate) works.
import { Pool } from 'undici';
import type { Dispatcher } from 'undici';
import type { Duplex } from 'node:stream';
import type { Socket } from 'node:net';
import type { Config } from '../config/types.ts';
import type { Logger } from '../shared/logger.ts';
import { SharedState, B_ACTIVE, BC_REQUESTS, BC_ERRORS, BC_FAILOVERS, G_NO_BACKEND, WS_OPEN, WS_OPENED } from '../shared/state.ts';
import type { BodySink, FrontRequest, FrontResponse, HeaderList } from './types.ts';
import { Attempt } from './attempt.ts';
import { responseHeaderList } from './headers.ts';
import { classifyFailure, clientFault } from './errors.ts';
import type { Balancer } from '../balancer/balancer.ts';
import type { Backend } from '../balancer/backend.ts';
import { recordBackendResult } from '../health/passive.ts';
import { interimFilteringConnector, releaseInterimFilter } from './interim-filter.ts';
import type { LatencyRecorder } from '../admin/latency.ts';
import { CLOSE_GOING_AWAY, newWebSocketKey, webSocketAccept } from './websocket-frames.ts';
import { Tunnel } from './websocket-tunnel.ts';

export interface WebSocketProxyOptions {
  config: Config;
  state: SharedState;
  balancer: Balancer;
  logger: Logger;
  shard: number;
  latency?: LatencyRecorder;
}

/** What the pipeline hands over for one WebSocket handshake. */
export interface TunnelJob {
  req: FrontRequest;
  res: FrontResponse;
  /** Backend request header fields, flat [name, value, ...] (upstreamHeaders: hop-by-hop fields removed). */
  headers: string[];
  cookies: Map<string, string>;
  /** Runs the response filters over the backend's 101 head and switches the client over (FrontResponse.upgrade). */
  accept(headers: HeaderList, backend: Backend): Duplex;
  /** A refused handshake: the backend's answer goes to the client as a normal response. */
  respond(status: number, headers: HeaderList, backend: Backend): BodySink;
  /** quiclb's own short answer (502, 503, 504). */
  answer(status: number, text: string, extra?: HeaderList): void;
  abort(reason: Error): void;
}

export interface TunnelOutcome {
  /** 101 for a tunnel (settles when it closes), else the status the client got; 499 when it left first. */
  status: number;
  backend?: Backend;
  attempts: number;
}

export type WebSocketErrorCode = 'QUICLB_WS_BAD_ACCEPT' | 'QUICLB_WS_CLIENT_GONE';

export class WebSocketError extends Error {
  readonly code: WebSocketErrorCode;
  constructor(code: WebSocketErrorCode, message: string) {
    super(message);
    this.name = 'WebSocketError';
    this.code = code;
  }
}

const CLIENT_GONE = new WebSocketError('QUICLB_WS_CLIENT_GONE', 'the client went away during the WebSocket handshake');

/** Fields of the backend's 101 that an HTTP/2 or HTTP/3 client must not get (RFC 8441 §5). */
const H1_ONLY_RESPONSE_FIELDS: ReadonlySet<string> = new Set(['sec-websocket-accept', 'content-length', 'transfer-encoding']);

/** One handshake attempt against one backend: the forwarder's Attempt, plus the switch to a tunnel on a 101. */
class Handshake extends Attempt {
  private readonly expectedAccept: string | undefined;
  private readonly onUpgraded: (h: Handshake, headers: HeaderList, socket: Socket) => void;

  constructor(
    job: TunnelJob,
    backend: Backend,
    expectedAccept: string | undefined,
    onUpgraded: (h: Handshake, headers: HeaderList, socket: Socket) => void,
    onDone: (h: Handshake, err: Error | null) => void,
  ) {
    super(job, backend, onDone as (a: Attempt, err: Error | null) => void);
    this.expectedAccept = expectedAccept;
    this.onUpgraded = onUpgraded;
  }

  onRequestUpgrade(_controller: Dispatcher.DispatchController, statusCode: number, headers: Record<string, string | string[] | undefined>, socket: Duplex): void {
    if (this.settled) {
      socket.destroy();
      return;
    }
    this.status = statusCode;
    const s = socket as Socket;
    releaseInterimFilter(s);
    if (this.expectedAccept !== undefined && headers['sec-websocket-accept'] !== this.expectedAccept) {
      // RFC 6455 §4.1: a client fails the connection on a wrong accept; quiclb is that client here.
      s.destroy();
      this.finish(new WebSocketError('QUICLB_WS_BAD_ACCEPT', `backend ${this.backend.id} answered the WebSocket handshake with a wrong Sec-WebSocket-Accept`));
      return;
    }
    this.settled = true;
    this.onUpgraded(this, responseHeaderList(headers), s);
  }
}

export class WebSocketProxy {
  private readonly opts: WebSocketProxyOptions;
  private readonly pools = new Map<number, Pool>();
  private readonly tunnels = new Set<Tunnel>();

  constructor(opts: WebSocketProxyOptions) {
    this.opts = opts;
  }

  /** Tunnels open on this shard now. */
  get openTunnels(): number {
    return this.tunnels.size;
  }

  /**
   * Proxies one WebSocket handshake and then its tunnel. Settles once the client has its answer and, for an
   * accepted handshake, once the tunnel has closed. Never rejects.
   */
  open(job: TunnelJob): Promise<TunnelOutcome> {
    return new Promise<TunnelOutcome>((resolve) => {
      const { config, state, balancer, logger } = this.opts;
      const req = job.req;
      const retryable = config.loadBalancer.retryIdempotent;
      const h1 = req.protocol === 'HTTP/1.1';
      let tried: Set<number> | undefined;
      let attemptNo = 0;
      let current: Handshake | undefined;
      let clientLeft = false;
      job.res.onClientAbort(() => {
        clientLeft = true;
        current?.abort(CLIENT_GONE);
      });

      const start = (): void => {
        attemptNo++;
        const picked = balancer.select({ host: req.authority, path: req.path, clientIp: req.remoteAddress, cookies: job.cookies, exclude: tried });
        if (!picked) {
          state.addGlobal(G_NO_BACKEND);
          const why = tried !== undefined ? 'every backend that was tried failed' : 'no healthy backend is available (or every one is at its maxConnections)';
          job.answer(503, `503 Service Unavailable: ${why}. quiclb will route again as soon as a backend recovers.\n`, [['retry-after', '5']]);
          resolve({ status: 503, attempts: attemptNo - 1 });
          return;
        }
        const backend = picked.backend;
        if (backend.protocol === 'fastcgi') {
          job.answer(501, `501 Not Implemented: backend ${backend.id} speaks FastCGI; WebSockets need an HTTP backend (protocol "http").\n`);
          resolve({ status: 501, backend, attempts: attemptNo });
          return;
        }
        state.addBackendGauge(backend.index, B_ACTIVE, 1);
        state.addBackendCounter(backend.index, BC_REQUESTS);
        let headers = job.headers;
        let expectedAccept: string | undefined;
        if (!h1) {
          const key = newWebSocketKey();
          expectedAccept = webSocketAccept(key);
          headers = h2Handshake(headers, key);
        }
        const attempt = new Handshake(job, backend, expectedAccept, upgraded, finished);
        current = attempt;
        try {
          this.pool(backend).dispatch({ method: 'GET', path: req.path, headers, upgrade: 'websocket' }, attempt);
        } catch (err) {
          finished(attempt, err as Error);
          return;
        }
        if (clientLeft) attempt.abort(CLIENT_GONE);
      };

      const upgraded = (attempt: Handshake, headers: HeaderList, socket: Socket): void => {
        const backend = attempt.backend;
        recordBackendResult(state, backend.index, true, config.healthCheck.passiveFailureThreshold, logger, backend.id);
        this.opts.latency?.record(backend.index, performance.now() - attempt.started);
        let client: Duplex;
        try {
          if (clientLeft) throw CLIENT_GONE;
          client = job.accept(h1 ? headers : headers.filter(([name]) => !H1_ONLY_RESPONSE_FIELDS.has(name)), backend);
        } catch (err) {
          // The client left while the backend answered (or its frontend refused the switch).
          logger.debug({ err: (err as Error).message, backend: backend.id }, 'WebSocket accepted by the backend but the client is gone');
          socket.destroy();
          state.addBackendGauge(backend.index, B_ACTIVE, -1);
          resolve({ status: 499, backend, attempts: attemptNo });
          return;
        }
        const shard = this.opts.shard;
        state.addWebSocketCounter(shard, WS_OPEN, 1n);
        state.addWebSocketCounter(shard, WS_OPENED);
        const tunnel = new Tunnel(client, socket, {
          idleTimeoutMs: config.websocket.idleTimeoutMs,
          logger,
          onClose: (t) => {
            this.tunnels.delete(t);
            state.addWebSocketCounter(shard, WS_OPEN, -1n);
            state.addBackendGauge(backend.index, B_ACTIVE, -1);
            resolve({ status: 101, backend, attempts: attemptNo });
          },
        });
        if (!tunnel.isFinished) this.tunnels.add(tunnel);
      };

      const finished = (attempt: Handshake, err: Error | null): void => {
        const backend = attempt.backend;
        state.addBackendGauge(backend.index, B_ACTIVE, -1);
        if (err === null) {
          // The backend refused the upgrade: its answer went to the client as it was.
          const ok = attempt.status < 500;
          recordBackendResult(state, backend.index, ok, config.healthCheck.passiveFailureThreshold, logger, backend.id);
          if (!ok) state.addBackendCounter(backend.index, BC_ERRORS);
          this.opts.latency?.record(backend.index, performance.now() - attempt.started);
          resolve({ status: attempt.status, backend, attempts: attemptNo });
          return;
        }
        const blame = clientFault(err, clientLeft);
        if (blame !== undefined) {
          if (attempt.responded || clientLeft || job.res.headersSent) job.abort(err);
          else job.answer(blame.status, `${blame.status} ${blame.text}\n`);
          resolve({ status: clientLeft ? 499 : blame.status, backend, attempts: attemptNo });
          return;
        }
        const failure = classifyFailure(err);
        state.addBackendCounter(backend.index, BC_ERRORS);
        recordBackendResult(state, backend.index, false, config.healthCheck.passiveFailureThreshold, logger, backend.id);
        logger.warn({ backend: backend.id, code: failure.code, kind: failure.kind, path: req.path, attempt: attemptNo }, 'backend WebSocket handshake failed');
        if (attempt.responded || job.res.headersSent) {
          job.abort(err);
          resolve({ status: 502, backend, attempts: attemptNo });
          return;
        }
        if (retryable && attemptNo === 1 && failure.kind !== 'timeout' && (err as { code?: unknown }).code !== 'QUICLB_WS_BAD_ACCEPT') {
          state.addBackendCounter(backend.index, BC_FAILOVERS);
          (tried ??= new Set()).add(backend.index);
          start();
          return;
        }
        job.answer(
          failure.status,
          failure.status === 504
            ? `504 Gateway Timeout: backend ${backend.id} did not answer the WebSocket handshake in time.\n`
            : `502 Bad Gateway: backend ${backend.id} could not take the WebSocket (${failure.code}).\n`,
        );
        resolve({ status: failure.status, backend, attempts: attemptNo });
      };

      start();
    });
  }

  /**
   * Closes every open tunnel with a close frame `code` to both peers (graceful shutdown: 1001 Going Away)
   * and resolves once all are closed, destroying what is still open after `graceMs`.
   */
  async closeAll(graceMs: number, code = CLOSE_GOING_AWAY, reason = 'server shutting down'): Promise<void> {
    if (this.tunnels.size === 0) return;
    const tunnels = [...this.tunnels];
    for (const t of tunnels) {
      try {
        t.goAway(code, reason, graceMs);
      } catch (err) {
        this.opts.logger.error({ err }, 'closing a WebSocket tunnel failed');
        t.destroy();
      }
    }
    const deadline = performance.now() + graceMs + 50;
    while (this.tunnels.size > 0 && performance.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    for (const t of this.tunnels) t.destroy();
  }

  async close(): Promise<void> {
    await Promise.all([...this.pools.values()].map((p) => p.close().catch(() => undefined)));
  }

  private pool(backend: Backend): Pool {
    let pool = this.pools.get(backend.index);
    if (!pool) {
      const lb = this.opts.config.loadBalancer;
      // Only handshakes use the pool: an upgraded socket leaves it (undici detaches it from its client), so
      // `connections` bounds handshakes in flight; maxConnections itself is enforced by the balancer.
      pool = new Pool(`http://${backend.host.includes(':') ? `[${backend.host}]` : backend.host}:${backend.port}`, {
        connections: backend.maxConnections > 0 ? backend.maxConnections : 256,
        pipelining: 1,
        connect: interimFilteringConnector({ timeout: lb.connectTimeoutMs }),
        headersTimeout: lb.backendTimeoutMs,
        bodyTimeout: Math.max(lb.backendTimeoutMs, this.opts.config.server.readTimeoutMs),
      });
      this.pools.set(backend.index, pool);
    }
    return pool;
  }
}

/**
 * The backend handshake fields for an HTTP/2 or HTTP/3 client (RFC 8441 §5): quiclb's own key (a key the
 * client may have sent anyway is dropped) and version 13 unless the client named one.
 */
function h2Handshake(flat: string[], key: string): string[] {
  const out: string[] = [];
  let version = false;
  for (let i = 0; i < flat.length; i += 2) {
    const name = flat[i];
    if (name === 'sec-websocket-key' || name === 'sec-websocket-accept') continue;
    if (name === 'sec-websocket-version') version = true;
    out.push(name, flat[i + 1]);
  }
  out.push('sec-websocket-key', key);
  if (!version) out.push('sec-websocket-version', '13');
  return out;
}
