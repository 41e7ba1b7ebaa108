// Entry point of one worker shard (a worker_thread). It terminates TLS/HTTP on the TCP sockets the
// primary transfers to it and QUIC on the datagrams the primary routes to it, and proxies every request
// through the current configuration generation's request path (runtime.ts).
import { parentPort, workerData } from 'node:worker_threads';
import type { TransferListItem } from 'node:worker_threads';
import type { ConfigStatus } from '../config/status.ts';
import { createLogger, lineBatcher } from '../shared/logger.ts';
import { SharedState, S_CONNECTIONS, SC_CONNECTIONS_TOTAL, G_TCP_CONNECTIONS, S_ALIVE, G_UNCAUGHT_ERRORS, WS_OPEN } from '../shared/state.ts';
import { PendingReplies } from '../shared/replies.ts';
import { SessionTable } from '../balancer/session-table.ts';
import { frontendLimits } from '../config/limits.ts';
import type { ClientResetLimiter } from '../shared/reset-budget.ts';
import { ClientEventWindow } from '../ratelimit/event-window.ts';
import { LatencyRecorder } from '../admin/latency.ts';
import { TcpFrontends } from '../tcp/servers.ts';
import type { QuicEndpoint } from '../quic/endpoint.ts';
import type { ApplyResult, ShardGeneration, ShardInit, ShardKeys, PrimaryToShard, ShardToPrimary } from './messages.ts';
import { ShardRuntime } from './runtime.ts';
import { ResponseCache } from '../cache/cache.ts';
import { cacheSettings } from '../cache/settings.ts';

const init = workerData as ShardInit;
const port = parentPort!;
const send = (msg: ShardToPrimary, transfer?: TransferListItem[]): void => port.postMessage(msg, transfer);
const first = init.current;
const shard = init.shard;
const logger = createLogger(first.config.logging, { shard });
const state = new SharedState(init.stateBuffer);
let configStatus: ConfigStatus = init.configStatus;

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

const latency = new LatencyRecorder();
// Frontend limits are bound to the sockets and connections: a reload that changes them needs a restart
// (src/config/reloadable.ts), so the first generation's are the shard's for good.
const limits = frontendLimits(first.config);
// HTTP/2 and HTTP/3 stream resets per client address, counted across all shards (CVE-2023-44487).
const resetWindow = ClientEventWindow.attach(init.resetWindowBuffer, limits.resetWindowMs);
const resetLimiter: ClientResetLimiter = {
  recordReset: (address, _now, n = 1) => resetWindow.record(address, n) <= limits.maxResetsPerClientPerWindow,
};

const collects = new PendingReplies<string[][]>();
// The shared response cache: this thread's own connection to the store the primary prepared, for every
// configuration generation (a reload does not reopen it).
const cache = openCache();

function openCache(): ResponseCache | undefined {
  if (init.cacheBuffer === undefined) return undefined;
  try {
    return ResponseCache.open(cacheSettings(first.config), init.cacheBuffer, {
      onError: (err, what) => logger.warn({ err }, what),
    });
  } catch (err) {
    // The primary opened the same file a moment ago; a shard that cannot still serves, uncached.
    logger.error({ err }, 'response cache unavailable in this shard: its requests go to the backends uncached');
    return undefined;
  }
}

// A restarted shard's tunnels died with its previous incarnation.
state.setWebSocketCounter(shard, WS_OPEN, 0n);

const runtime = new ShardRuntime(
  {
    shard,
    workers: init.workers,
    startedAt: init.startedAt,
    state,
    sessions: new SessionTable(init.sessionBuffer),
    latency,
    logger,
    // The admin path bounds this itself (src/admin/collect.ts); the reply helper's bound is a backstop.
    collectLatency: () => collects.request((id) => (send({ type: 'admin:collect', id }), true), 5000, () => []),
    configStatus: () => configStatus,
    onDrained: (below) => send({ type: 'config:drained', below }),
    cache,
  },
  first,
);

const tcp = new TcpFrontends({
  config: first.config,
  limits,
  logger,
  shard,
  certFile: first.certFile,
  keyFile: first.keyFile,
  ticketKeys: Buffer.from(first.keys.tlsTicketKeys),
  limiter: runtime.admission,
  resetLimiter,
  onRequest: runtime.handle,
  onConnectionOpen: () => {
    state.addShardGauge(shard, S_CONNECTIONS, 1);
    state.addShardCounter(shard, SC_CONNECTIONS_TOTAL);
    state.addGlobal(G_TCP_CONNECTIONS);
  },
  onConnectionClose: () => state.addShardGauge(shard, S_CONNECTIONS, -1),
});

// quiche is loaded only when QUIC is on for this shard.
const quic: QuicEndpoint | undefined = first.config.quic.enabled && shard < init.quicShards
  ? new (await import('../quic/endpoint.ts')).QuicEndpoint({
      shard,
      config: first.config,
      certFile: first.certFile,
      keyFile: first.keyFile,
      resetKey: first.keys.resetKeys,
      ticketKey: first.keys.quicTicketKey,
      state,
      logger,
      post: (msg, transfer) => send(msg, transfer),
      onRequest: runtime.handle,
      limiter: runtime.admission,
      limits,
      resetLimiter,
    })
  : undefined;

/** The key ring's keys this shard runs with (those of the last generation it applied). */
let keys: ShardKeys = first.keys;

const sameBytes = (a: Uint8Array, b: Uint8Array): boolean => Buffer.compare(a, b) === 0;
function sameShardKeys(a: ShardKeys, b: ShardKeys): boolean {
  return (
    sameBytes(a.tlsTicketKeys, b.tlsTicketKeys) &&
    sameBytes(a.quicTicketKey, b.quicTicketKey) &&
    a.resetKeys.length === b.resetKeys.length &&
    a.resetKeys.every((k, i) => sameBytes(k, b.resetKeys[i]))
  );
}

/**
 * Everything of `next` is built first (QUIC config, TLS context, request path), so a failure changes
 * nothing; then the swap, which cannot fail. The TLS context and the quiche Config are rebuilt by every
 * reload (the certificate files may have changed), with the generation's ticket keys; the stateless reset
 * keys only when the key ring was rotated.
 */
function apply(next: ShardGeneration): ApplyResult {
  if (next.generation <= runtime.current.generation) return { ok: true, generation: runtime.current.generation };
  try {
    const rotated = !sameShardKeys(keys, next.keys);
    const qconfig = quic?.buildConfig(next.config, next.certFile, next.keyFile, next.keys.quicTicketKey);
    const path = runtime.build(next);
    try {
      tcp.setCertificate(next.certFile, next.keyFile, Buffer.from(next.keys.tlsTicketKeys));
    } catch (err) {
      void path.pools.release();
      throw err;
    }
    if (qconfig !== undefined) quic!.useConfig(qconfig, next.config, next.keys.quicTicketKey);
    if (rotated) {
      quic?.useResetKeys(next.keys.resetKeys);
      keys = next.keys;
      logger.debug({ generation: next.generation }, 'key ring rotated: new TLS and QUIC handshakes use the new session ticket key, new QUIC connection IDs the new reset key');
    }
    runtime.swap(path, next.freshSlots);
    cache?.reconfigure(cacheSettings(next.config));
    logger.level = next.config.logging.level;
    logger.debug({ generation: next.generation }, 'configuration generation applied');
    return { ok: true, generation: next.generation };
  } catch (err) {
    logger.error({ err, generation: next.generation }, 'could not apply the reloaded configuration; this shard keeps the previous one');
    return { ok: false, generation: next.generation, error: (err as Error).message ?? String(err) };
  }
}

/** How long WebSocket peers get to take quiclb's close frames at shutdown before their connections are cut. */
const TUNNEL_CLOSE_GRACE_MS = 300;

async function drainAndExit(timeoutMs: number): Promise<void> {
  tcp.drain();
  quic?.goaway();
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline && tcp.connectionCount() + (quic?.connectionCount() ?? 0) > 0) {
    await new Promise((r) => setTimeout(r, 50));
  }
  // WebSockets never end on their own: past the drain timeout each peer gets a close frame (1001 Going
  // Away) and a moment to take it, within the second the primary allows past the timeout.
  await runtime.closeTunnels(TUNNEL_CLOSE_GRACE_MS);
  tcp.destroyAll();
  await quic?.close();
  await runtime.close();
  cache?.close();
  lineBatcher().flush();
  send({ type: 'drained' });
}

port.on('message', (msg: PrimaryToShard) => {
  switch (msg.type) {
    case 'quic:in':
      quic?.receiveBatchMessage(msg);
      break;
    case 'tcp:conn':
      tcp.accept(msg.socket, msg.kind);
      break;
    case 'admin:snapshot':
      send({ type: 'admin:snapshot', id: msg.id, snapshot: latency.snapshot() });
      break;
    case 'admin:collected':
      collects.settle(msg.id, msg.snapshots);
      break;
    case 'config:apply':
      configStatus = msg.status;
      send({ type: 'config:applied', id: msg.id, result: apply(msg.next) });
      break;
    case 'config:status':
      configStatus = msg.status;
      break;
    case 'shutdown':
      void drainAndExit(msg.timeoutMs);
      break;
  }
});

state.setShardGauge(shard, S_ALIVE, 1);
send({ type: 'ready', generation: first.generation });
