// The primary thread: owns the listening sockets (TCP and UDP), the QUIC connection-ID table (in the
// UDP router), the shared state, the active health checker and the shard supervisor.
import os from 'node:os';
import type { TransferListItem } from 'node:worker_threads';
import type { Config } from '../config/types.ts';
import type { Logger } from '../shared/logger.ts';
import { SharedState, MAX_SHARDS } from '../shared/state.ts';
import { ensureSelfSigned } from '../shared/tls-material.ts';
import { quicheBindingFile } from '../quic/quiche.ts';
import { SessionTable } from '../balancer/session-table.ts';
import { ActiveHealthChecker } from '../health/active.ts';
import { RateLimiter } from '../ratelimit/limiter.ts';
import { ClientEventWindow } from '../ratelimit/event-window.ts';
import { frontendLimits } from '../config/limits.ts';
import type { UdpRouter } from './udp-router.ts';
import { ShardSupervisor } from './shard-supervisor.ts';
import { TcpListeners } from './tcp-listeners.ts';
import type { ListenSpec } from './tcp-listeners.ts';

export interface PrimaryOptions {
  config: Config;
  workers?: number;
  logger: Logger;
}

export interface RunningPrimary {
  config: Config;
  state: SharedState;
  supervisor: ShardSupervisor;
  stop(): Promise<void>;
}

export function defaultWorkerCount(): number {
  return Math.max(1, Math.min(MAX_SHARDS, os.availableParallelism()));
}

/**
 * How many shards may run QUIC: all of them with the thread-safe copy of the quiche binding
 * (src/quic/quiche-binding-file.ts), else only shard 0, the first and only thread that loads the original.
 * Only files are read and written here: the primary never loads quiche.
 */
function quicShardCount(workers: number, logger: Logger): number {
  const binding = quicheBindingFile();
  if (binding.threadSafe) {
    logger.debug({ file: binding.path, detail: binding.detail }, 'quiche binding: thread-safe copy');
    return workers;
  }
  if (workers > 1) {
    logger.warn(
      { file: binding.path, reason: binding.detail, quicShards: 1, shards: workers },
      'HTTP/3 runs on shard 0 only: the thread-safe copy of the quiche binding is missing (run `npm install` where node_modules is writable)',
    );
  }
  return 1;
}

export async function startPrimary(opts: PrimaryOptions): Promise<RunningPrimary> {
  const { config, logger } = opts;
  const workers = opts.workers ?? defaultWorkerCount();
  if (workers < 1 || workers > MAX_SHARDS) throw new Error(`--workers must be 1..${MAX_SHARDS}, got ${workers}`);
  let { certFile, keyFile } = config.tls;
  if (!certFile || !keyFile) {
    const generated = await ensureSelfSigned(config.tls.stateDir);
    certFile = generated.certFile;
    keyFile = generated.keyFile;
    logger.warn({ certFile }, 'tls.certFile/keyFile not set: serving a SELF-SIGNED certificate (browsers will warn); configure a real one for production');
  }

  const state = new SharedState();
  config.loadBalancer.backendServers.forEach((b, i) => state.initBackend(i, b.healthy));
  const sessions = new SessionTable();
  let router: UdpRouter | undefined;
  const quicShards = config.quic.enabled ? quicShardCount(workers, logger) : 0;
  // Per-client limits live in shared tables that every shard, restarted ones too, attaches to (ShardInit).
  // Stream resets (HTTP/2, HTTP/3 rapid reset) are tracked for 65536 clients, least recently seen recycled.
  const rateLimiter = RateLimiter.create(config);
  const resetWindow = ClientEventWindow.create(65536, frontendLimits(config).resetWindowMs);

  const supervisor = new ShardSupervisor({
    count: workers,
    init: { workers, quicShards, config, stateBuffer: state.buffer, sessionBuffer: sessions.buffer, certFile, keyFile, startedAt: Date.now(), rateLimit: rateLimiter.shared, resetWindowBuffer: resetWindow.buffer },
    state,
    logger,
    onShardMessage: (shard, msg) => router?.onShardMessage(shard, msg),
    onShardDown: (shard) => router?.shardDown(shard),
    onShardUp: (shard) => router?.shardUp(shard),
  });
  await supervisor.start();

  const s = config.server;
  const specs: ListenSpec[] = [
    { kind: 'http', host: s.bindAddress, port: s.httpPort },
    { kind: 'https', host: s.bindAddress, port: s.httpsPort },
  ];
  if (config.admin.port > 0) specs.push({ kind: 'admin', host: s.bindAddress, port: config.admin.port });
  const tcp = new TcpListeners(supervisor, logger);
  await tcp.listen(specs);

  if (config.quic.enabled) {
    const { UdpRouter } = await import('./udp-router.ts');
    router = new UdpRouter({
      config,
      quicShards,
      state,
      logger,
      shards: supervisor.shards.map((h) => ({
        index: h.index,
        alive: () => supervisor.alive(h.index),
        post: (msg: unknown, transfer?: TransferListItem[]) => supervisor.post(h.index, msg, transfer),
      })),
    });
    await router.listen();
    for (const h of supervisor.shards) if (supervisor.alive(h.index)) router.shardUp(h.index);
  }

  const health = new ActiveHealthChecker({ config, state, logger });
  health.start();

  logger.info(
    {
      workers,
      http: `${s.bindAddress}:${s.httpPort}`,
      https: `${s.bindAddress}:${s.httpsPort}`,
      h3: config.quic.enabled ? `${s.bindAddress}:${s.httpsPort}/udp` : 'disabled',
      quicShards,
      backends: config.loadBalancer.backendServers.map((b) => `${b.id}=${b.host}:${b.port}`),
      strategy: config.loadBalancer.strategy,
    },
    'quiclb ready',
  );

  let stopped: Promise<void> | undefined;
  return {
    config,
    state,
    supervisor,
    stop() {
      stopped ??= (async () => {
        logger.info({ drainTimeoutMs: s.shutdownTimeoutMs }, 'shutting down: no new connections, draining in-flight requests');
        tcp.close();
        await health.stop();
        await supervisor.stop(s.shutdownTimeoutMs);
        await router?.close();
        logger.info('quiclb stopped');
      })();
      return stopped;
    },
  };
}
