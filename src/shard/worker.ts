// Entry point of one worker shard (a worker_thread). It terminates TLS/HTTP on the TCP sockets the
// primary transfers to it and QUIC on the datagrams the primary routes to it, and proxies every request.
import { parentPort, workerData } from 'node:worker_threads';
import type { TransferListItem } from 'node:worker_threads';
import type { Socket } from 'node:net';
import type { Config } from '../config/types.ts';
import { createLogger, lineBatcher } from '../shared/logger.ts';
import { SharedState, S_CONNECTIONS, SC_CONNECTIONS_TOTAL, G_TCP_CONNECTIONS, S_ALIVE, G_UNCAUGHT_ERRORS } from '../shared/state.ts';
import { Balancer } from '../balancer/balancer.ts';
import { SessionTable } from '../balancer/session-table.ts';
import { Forwarder } from '../proxy/forward.ts';
import { Pipeline } from '../pipeline/pipeline.ts';
import { buildPhases } from '../pipeline/phases/index.ts';
import { frontendLimits } from '../config/limits.ts';
import { RateLimiter } from '../ratelimit/limiter.ts';
import type { ClientResetLimiter } from '../shared/reset-budget.ts';
import { ClientEventWindow } from '../ratelimit/event-window.ts';
import { LatencyRecorder } from '../admin/latency.ts';
import { TcpFrontends } from '../tcp/servers.ts';
import type { TcpKind } from '../tcp/servers.ts';
import type { QuicEndpoint } from '../quic/endpoint.ts';
import type { ShardInit, PrimaryToShard } from './messages.ts';

const init = workerData as ShardInit;
const port = parentPort!;
const config: Config = init.config;
const shard = init.shard;
const logger = createLogger(config.logging, { shard });
const state = new SharedState(init.stateBuffer);

// The last line of defence. Every request and connection has its own boundary (the pipeline runner, the
// frontends' callbacks); an exception that still gets here is a bug in one connection's handling, and ending
// the shard would cost every other connection on it. Logged with its stack and counted (/stats
// uncaughtErrors, quiclb_uncaught_errors_total) so tests and operators see it; the shard keeps serving.
process.on('uncaughtException', (err) => {
  state.addGlobal(G_UNCAUGHT_ERRORS);
  logger.error({ err }, 'uncaught exception in a shard (a bug: please report it); the shard keeps running');
});
process.on('unhandledRejection', (err) => {
  state.addGlobal(G_UNCAUGHT_ERRORS);
  logger.error({ err }, 'unhandled promise rejection in a shard (a bug: please report it)');
});
const balancer = new Balancer({
  lb: config.loadBalancer,
  sessionCookie: config.moodle.sessionCookie,
  state,
  sessions: new SessionTable(init.sessionBuffer),
});
const latency = new LatencyRecorder();
const forwarder = new Forwarder({ config, state, balancer, logger, latency, shards: init.workers });
const limits = frontendLimits(config);
// Per-client limits, shared with every other shard through the primary's tables (src/ratelimit).
const limiter = RateLimiter.attach(init.rateLimit, config);
// HTTP/2 and HTTP/3 stream resets per client address, counted across all shards (CVE-2023-44487).
const resetWindow = ClientEventWindow.attach(init.resetWindowBuffer, limits.resetWindowMs);
const resetLimiter: ClientResetLimiter = {
  recordReset: (address, _now, n = 1) => resetWindow.record(address, n) <= limits.maxResetsPerClientPerWindow,
};

let nextCollect = 0;
const pendingCollect = new Map<number, (snapshots: string[][]) => void>();
const pipeline = new Pipeline(
  buildPhases({
    config,
    state,
    shard,
    balancer,
    forwarder,
    logger,
    limiter,
    admin: {
    config,
    state,
    startedAt: init.startedAt,
    workers: init.workers,
    // Drains and enables from the dashboard, and failed logins, are logged with the client address.
    logger,
    limiter,
    collectLatency: () =>
      new Promise<string[][]>((resolve) => {
        const id = nextCollect++;
        pendingCollect.set(id, resolve);
        port.postMessage({ type: 'admin:collect', id });
      }),
    },
  }),
  logger,
);
const handler = pipeline.handle;

const tcp = new TcpFrontends({
  config,
  limits,
  logger,
  shard,
  certFile: init.certFile,
  keyFile: init.keyFile,
  ticketKeys: Buffer.from(init.tlsTicketKeys),
  limiter,
  resetLimiter,
  onRequest: handler,
  onConnectionOpen: () => {
    state.addShardGauge(shard, S_CONNECTIONS, 1);
    state.addShardCounter(shard, SC_CONNECTIONS_TOTAL);
    state.addGlobal(G_TCP_CONNECTIONS);
  },
  onConnectionClose: () => state.addShardGauge(shard, S_CONNECTIONS, -1),
});

// quiche is loaded only when QUIC is on for this shard.
const quic: QuicEndpoint | undefined = config.quic.enabled && shard < init.quicShards
  ? new (await import('../quic/endpoint.ts')).QuicEndpoint({
      shard,
      config,
      certFile: init.certFile,
      keyFile: init.keyFile,
      resetKey: init.resetKey,
      ticketKey: init.quicTicketKey,
      state,
      logger,
      post: (msg: unknown, transfer?: TransferListItem[]) => port.postMessage(msg, transfer),
      onRequest: handler,
      limiter,
      limits,
      resetLimiter,
    })
  : undefined;

async function drainAndExit(timeoutMs: number): Promise<void> {
  tcp.drain();
  quic?.goaway();
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline && tcp.connectionCount() + (quic?.connectionCount() ?? 0) > 0) {
    await new Promise((r) => setTimeout(r, 50));
  }
  tcp.destroyAll();
  await quic?.close();
  await forwarder.close();
  lineBatcher().flush();
  port.postMessage({ type: 'drained' });
}

port.on('message', (msg: PrimaryToShard) => {
  if (quic?.handleMessage(msg)) return;
  switch (msg.type) {
    case 'tcp:conn':
      tcp.accept(msg.socket as Socket, msg.kind as TcpKind);
      break;
    case 'admin:snapshot':
      port.postMessage({ type: 'admin:snapshot', id: msg.id, snapshot: latency.snapshot() });
      break;
    case 'admin:collected':
      pendingCollect.get(msg.id)?.(msg.snapshots);
      pendingCollect.delete(msg.id);
      break;
    case 'shutdown':
      void drainAndExit(msg.timeoutMs);
      break;
  }
});

state.setShardGauge(shard, S_ALIVE, 1);
port.postMessage({ type: 'ready' });
