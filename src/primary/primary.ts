// The primary thread: owns the listening sockets (TCP and UDP), the QUIC connection-ID table (in the
// UDP router), the shared state and its backend slots, the active health checker, the shard supervisor and
// configuration reloads (reload.ts).
import os from 'node:os';
import type { TransferListItem } from 'node:worker_threads';
import type { Config } from '../config/types.ts';
import { initialConfigStatus } from '../config/status.ts';
import type { ShardGeneration } from '../shard/messages.ts';
import type { Logger } from '../shared/logger.ts';
import { SharedState, MAX_SHARDS } from '../shared/state.ts';
import { quicheBindingFile } from '../quic/quiche.ts';
import { SessionTable } from '../balancer/session-table.ts';
import { ActiveHealthChecker } from '../health/active.ts';
import { RateLimiter } from '../ratelimit/limiter.ts';
import { ClientEventWindow } from '../ratelimit/event-window.ts';
import { frontendLimits } from '../config/limits.ts';
import { prepareCacheStore } from '../cache/cache.ts';
import { cacheSettings } from '../cache/settings.ts';
import { CacheSharedState } from '../shared/cache-state.ts';
import type { UdpRouter } from './udp-router.ts';
import { ShardSupervisor } from './shard-supervisor.ts';
import { TcpListeners } from './tcp-listeners.ts';
import { prepareTlsFiles } from './tls-files.ts';
import { loadPrimaryKeys, shardKeys } from './keys.ts';
import { bindAddressList, formatHostPort, resolveBinds } from './bind-plan.ts';
import type { RestartPolicy } from './restart-backoff.ts';
import type { ListenSpec } from './tcp-listeners.ts';
import { BackendSlots } from './backend-slots.ts';
import { Reloader, type ReloadOutcome } from './reload.ts';

export interface PrimaryOptions {
  config: Config;
  workers?: number;
  logger: Logger;
  /** Shard restart delays; DEFAULT_RESTART_POLICY (src/primary/restart-backoff.ts) when absent. */
  restartPolicy?: RestartPolicy;
  /**
   * How a reload reads the configuration again (the file and env overrides, validated); absent: reloads are
   * refused (a config built in memory has nothing to re-read).
   */
  loadConfig?: () => Config;
}

export interface RunningPrimary {
  /** The running configuration (the latest applied generation). */
  readonly config: Config;
  state: SharedState;
  supervisor: ShardSupervisor;
  /** Re-reads the configuration and applies it (SIGHUP); never rejects: a refused reload says why. */
  reload(): Promise<ReloadOutcome>;
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

/**
 * The response cache (cache.enabled or moodle.enableCaching): its shared counters, handed to every shard
 * (restarted ones too), and its store, created and cleared of what a previous run left half-written before
 * any shard opens it. Throws CacheStoreError (code QUICLB_CACHE_STORE, naming cache.path) when the file
 * cannot be used.
 */
function prepareCache(config: Config, logger: Logger): SharedArrayBuffer | undefined {
  const settings = cacheSettings(config);
  if (!settings.enabled) return undefined;
  const shared = new CacheSharedState();
  prepareCacheStore(settings, shared);
  const { bytes, entries } = shared.snapshot();
  logger.info({ path: settings.path, maxSize: settings.maxSize, maxEntrySize: settings.maxEntrySize, bytes, entries }, 'response cache on');
  return shared.buffer;
}

export async function startPrimary(opts: PrimaryOptions): Promise<RunningPrimary> {
  const { config, logger } = opts;
  const workers = opts.workers ?? defaultWorkerCount();
  if (workers < 1 || workers > MAX_SHARDS) throw new Error(`--workers must be 1..${MAX_SHARDS}, got ${workers}`);
  const { certFile, keyFile } = await prepareTlsFiles(config, logger);

  const keys = loadPrimaryKeys(config, logger);
  const state = new SharedState();
  config.loadBalancer.backendServers.forEach((b, i) => state.initBackend(i, b.healthy));
  const slots = new BackendSlots(config.loadBalancer.backendServers);
  const sessions = new SessionTable();
  let router: UdpRouter | undefined;
  let reloader: Reloader | undefined;
  const quicShards = config.quic.enabled ? quicShardCount(workers, logger) : 0;
  // Per-client limits live in shared tables that every shard, restarted ones too, attaches to (ShardInit).
  // Stream resets (HTTP/2, HTTP/3 rapid reset) are tracked for 65536 clients, least recently seen recycled.
  const rateLimiter = RateLimiter.create(config);
  const resetWindow = ClientEventWindow.create(65536, frontendLimits(config).resetWindowMs);
  const cacheBuffer = prepareCache(config, logger);

  const first: ShardGeneration = {
    generation: 1,
    config,
    slots: slots.slotsOf(config.loadBalancer.backendServers),
    freshSlots: [],
    certFile,
    keyFile,
    rateLimit: rateLimiter.shared,
    keys: shardKeys(keys),
  };
  const status = initialConfigStatus();
  const supervisor = new ShardSupervisor({
    count: workers,
    init: { workers, quicShards, current: first, configStatus: status, stateBuffer: state.buffer, sessionBuffer: sessions.buffer,
      startedAt: Date.now(), resetWindowBuffer: resetWindow.buffer, cacheBuffer },
    state,
    logger,
    onShardMessage: (shard, msg) => router?.onShardMessage(shard, msg),
    onShardDown: (shard) => {
      router?.shardDown(shard);
      reloader?.shardDown(shard);
    },
    onShardUp: (shard, generation) => {
      router?.shardUp(shard);
      reloader?.shardUp(shard, generation);
    },
    onShardDrained: (shard, below) => reloader?.shardDrained(shard, below),
    restartPolicy: opts.restartPolicy,
  });
  await supervisor.start();

  const s = config.server;
  const binds = await resolveBinds(bindAddressList(s), logger);
  const ports: Array<[ListenSpec['kind'], number]> = [
    ['http', s.httpPort],
    ['https', s.httpsPort],
  ];
  if (config.admin.port > 0) ports.push(['admin', config.admin.port]);
  const specs: ListenSpec[] = ports.flatMap(([kind, port]) => binds.map((b) => ({ kind, host: b.host, port, ipv6Only: b.ipv6Only })));
  const tcp = new TcpListeners(supervisor, logger);
  await tcp.listen(specs);

  if (config.quic.enabled) {
    const { UdpRouter } = await import('./udp-router.ts');
    router = new UdpRouter({
      config,
      quicShards,
      binds,
      resetKey: keys.resetKeys,
      retryKeys: keys.retryKeys,
      state,
      logger,
      shards: supervisor.shards.map((h) => ({
        index: h.index,
        alive: () => supervisor.alive(h.index),
        post: (msg, transfer?: TransferListItem[]) => supervisor.post(h.index, msg, transfer),
      })),
    });
    await router.listen();
    for (const h of supervisor.shards) if (supervisor.alive(h.index)) router.shardUp(h.index);
  }

  const health = new ActiveHealthChecker({ config, slots: first.slots, state, logger });
  health.start();

  let running = config;
  reloader = new Reloader({
    load: opts.loadConfig ?? (() => {
      throw new Error('this quiclb was started without a configuration file to reload');
    }),
    initial: first,
    keys,
    onKeysRotated: (next) => router?.useKeys(next),
    slots,
    state,
    sessions,
    supervisor,
    health,
    logger,
    status,
    onApplied: (next) => {
      running = next;
    },
  });
  for (const h of supervisor.shards) if (supervisor.alive(h.index)) reloader.shardUp(h.index, h.generation);

  logger.info(
    {
      workers,
      http: binds.map((b) => formatHostPort(b.host, s.httpPort)).join(', '),
      https: binds.map((b) => formatHostPort(b.host, s.httpsPort)).join(', '),
      h3: config.quic.enabled ? binds.map((b) => `${formatHostPort(b.host, s.httpsPort)}/udp`).join(', ') : 'disabled',
      quicShards,
      backends: config.loadBalancer.backendServers.map((b) => `${b.id}=${b.protocol === 'fastcgi' ? 'fastcgi://' : ''}${b.socket ?? `${b.host}:${b.port}`}`),
      strategy: config.loadBalancer.strategy,
    },
    'quiclb ready',
  );

  let stopped: Promise<void> | undefined;
  const reloads = reloader;
  return {
    get config() {
      return running;
    },
    state,
    supervisor,
    reload: () => reloads.reload(),
    stop() {
      stopped ??= (async () => {
        const drainMs = running.server.shutdownTimeoutMs;
        logger.info({ drainTimeoutMs: drainMs }, 'shutting down: no new connections, draining in-flight requests');
        tcp.close();
        await health.stop();
        await supervisor.stop(drainMs);
        await router?.close();
        logger.info('quiclb stopped');
      })();
      return stopped;
    },
  };
}
