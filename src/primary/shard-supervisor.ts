// Starts the worker shards, restarts one that dies (only its own connections are lost), answers the shards'
// admin requests that need every shard (merged latency histograms), and hands every shard a new
// configuration generation (applyAll). A shard (re)started later starts with the current generation.
import { Worker } from 'node:worker_threads';
import type { TransferListItem } from 'node:worker_threads';
import type { Logger } from '../shared/logger.ts';
import type { ConfigStatus } from '../config/status.ts';
import { SharedState, S_ALIVE, S_CONNECTIONS, S_QUIC_CONNECTIONS, G_SHARD_RESTARTS } from '../shared/state.ts';
import { PendingReplies } from '../shared/replies.ts';
import type { QuicOutMessage } from '../quic/messages.ts';
import type { ApplyResult, PrimaryToShard, ShardGeneration, ShardInit, ShardToPrimary } from '../shard/messages.ts';
import { CrashBackoff, type RestartPolicy } from './restart-backoff.ts';

const WORKER_URL = new URL('../shard/worker.ts', import.meta.url);
const COLLECT_TIMEOUT_MS = 1000;
/** A shard builds a request path in milliseconds; one that has not answered after this is reported as failed. */
const APPLY_TIMEOUT_MS = 10_000;

export interface ShardApplyResult {
  shard: number;
  result: ApplyResult;
}

export interface ShardHandle {
  index: number;
  worker: Worker | undefined;
  ready: boolean;
  /** Restarts over the whole run (the global count is G_SHARD_RESTARTS in /stats). */
  restarts: number;
  /** performance.now() when the current worker reported ready; 0 before. */
  readyAt: number;
  backoff: CrashBackoff;
  /** The configuration generation the shard runs (the one it started with, then each one it applied). */
  generation: number;
  /** The generation the current worker was started with (it runs it from its first request on). */
  spawnedWith: number;
}

export interface SupervisorOptions {
  count: number;
  init: Omit<ShardInit, 'shard'>;
  state: SharedState;
  logger: Logger;
  /** QUIC datagrams from a shard (the UDP router's). */
  onShardMessage(shard: number, msg: QuicOutMessage): void;
  onShardDown(shard: number): void;
  /** Ready, running configuration `generation`. */
  onShardUp(shard: number, generation: number): void;
  /** The shard runs no request of a generation below `below` any more (src/primary/reload.ts frees slots). */
  onShardDrained?(shard: number, below: number): void;
  /** Restart delays (src/primary/restart-backoff.ts); DEFAULT_RESTART_POLICY when absent. */
  restartPolicy?: RestartPolicy;
}

export class ShardSupervisor {
  readonly shards: ShardHandle[] = [];
  private stopping = false;
  private tieBreak = 0;
  private readonly snapshots = new PendingReplies<string[]>();
  private readonly applies = new PendingReplies<ApplyResult>();
  private readonly opts: SupervisorOptions;
  /** What a (re)started shard gets: updated by every applied reload. */
  private init: Omit<ShardInit, 'shard'>;

  constructor(opts: SupervisorOptions) {
    this.opts = opts;
    this.init = opts.init;
    for (let i = 0; i < opts.count; i++) {
      this.shards.push({
        index: i,
        worker: undefined,
        ready: false,
        restarts: 0,
        readyAt: 0,
        backoff: new CrashBackoff(opts.restartPolicy),
        generation: 0,
        spawnedWith: 0,
      });
    }
  }

  /** Resolves when every shard reported ready. */
  async start(): Promise<void> {
    await Promise.all(this.shards.map((s) => this.spawn(s)));
  }

  private spawn(handle: ShardHandle): Promise<void> {
    const { state, logger } = this.opts;
    const worker = new Worker(WORKER_URL, {
      workerData: { ...this.init, shard: handle.index } satisfies ShardInit,
      name: `quiclb-shard-${handle.index}`,
    });
    handle.worker = worker;
    handle.ready = false;
    handle.readyAt = 0;
    handle.spawnedWith = this.init.current.generation;
    return new Promise<void>((resolve) => {
      worker.on('message', (msg: ShardToPrimary) => {
        switch (msg.type) {
          case 'quic:out':
            this.opts.onShardMessage(handle.index, msg);
            break;
          case 'ready':
            handle.ready = true;
            handle.readyAt = performance.now();
            handle.generation = msg.generation;
            this.opts.onShardUp(handle.index, msg.generation);
            // Started before a reload that it then missed (it was not ready to take it): catch up.
            if (msg.generation !== this.init.current.generation) void this.catchUp(handle);
            resolve();
            break;
          case 'admin:collect':
            void this.collectSnapshots().then((snapshots) => worker.postMessage({ type: 'admin:collected', id: msg.id, snapshots } satisfies PrimaryToShard));
            break;
          case 'admin:snapshot':
            this.snapshots.settle(msg.id, msg.snapshot);
            break;
          case 'config:applied':
            this.applies.settle(msg.id, msg.result);
            break;
          case 'config:drained':
            this.opts.onShardDrained?.(handle.index, msg.below);
            break;
          case 'drained':
            break;
        }
      });
      worker.on('error', (err) => logger.error({ err, shard: handle.index }, 'shard crashed'));
      worker.once('exit', (code) => {
        handle.ready = false;
        handle.worker = undefined;
        state.setShardGauge(handle.index, S_ALIVE, 0);
        state.setShardGauge(handle.index, S_CONNECTIONS, 0);
        state.setShardGauge(handle.index, S_QUIC_CONNECTIONS, 0);
        this.opts.onShardDown(handle.index);
        resolve();
        if (this.stopping) return;
        state.addGlobal(G_SHARD_RESTARTS);
        const ranMs = handle.readyAt > 0 ? Math.round(performance.now() - handle.readyAt) : 0;
        const delay = handle.backoff.onCrash(ranMs);
        handle.restarts++;
        logger.error(
          { shard: handle.index, exitCode: code, ranMs, crashStreak: handle.backoff.streak, restarts: handle.restarts, restartInMs: delay },
          'shard exited; restarting it',
        );
        setTimeout(() => {
          if (!this.stopping) void this.spawn(handle);
        }, delay).unref();
      });
    });
  }

  alive(index: number): boolean {
    const h = this.shards[index];
    return h.ready && h.worker !== undefined;
  }

  post(index: number, msg: PrimaryToShard, transfer?: readonly TransferListItem[]): boolean {
    const w = this.shards[index].worker;
    if (!w || !this.shards[index].ready) return false;
    w.postMessage(msg, transfer as TransferListItem[] | undefined);
    return true;
  }

  /**
   * Every ready shard builds `next` and switches new requests to it; resolves with each one's answer (a
   * shard that does not answer within APPLY_TIMEOUT_MS counts as failed). Shards started from now on start
   * with `next`.
   */
  async applyAll(next: ShardGeneration, status: ConfigStatus): Promise<ShardApplyResult[]> {
    this.init = { ...this.init, current: next, configStatus: status };
    const ready = this.shards.filter((h) => this.alive(h.index));
    return Promise.all(ready.map(async (h) => ({ shard: h.index, result: await this.applyOne(h, next, status) })));
  }

  private async catchUp(handle: ShardHandle): Promise<void> {
    const next = this.init.current;
    const result = await this.applyOne(handle, next, this.init.configStatus);
    if (!result.ok) this.opts.logger.error({ shard: handle.index, generation: next.generation, error: result.error }, 'a restarted shard could not apply the current configuration; it keeps the one it started with');
  }

  /** The generations that shards being started (not ready yet) were started with. */
  startingGenerations(): number[] {
    return this.shards.filter((h) => h.worker !== undefined && !h.ready).map((h) => h.spawnedWith);
  }

  private async applyOne(handle: ShardHandle, next: ShardGeneration, status: ConfigStatus): Promise<ApplyResult> {
    const result = await this.applies.request(
      (id) => this.post(handle.index, { type: 'config:apply', id, next, status }),
      APPLY_TIMEOUT_MS,
      () => ({ ok: false, generation: next.generation, error: `shard ${handle.index} did not answer within ${APPLY_TIMEOUT_MS} ms` }),
    );
    if (result.ok) handle.generation = Math.max(handle.generation, result.generation);
    return result;
  }

  /** The reload status changed without a new generation (a refused reload): every shard's /stats shows it. */
  publishStatus(status: ConfigStatus): void {
    this.init = { ...this.init, configStatus: status };
    for (const h of this.shards) this.post(h.index, { type: 'config:status', status });
  }

  /**
   * The alive shard with the fewest open connections (SharedArrayBuffer gauge the shards keep). Ties go
   * round robin, so short sequential connections spread instead of always landing on shard 0.
   */
  leastLoaded(): number {
    let best = -1;
    let bestLoad = Infinity;
    const n = this.shards.length;
    const start = this.tieBreak++ % n;
    for (let k = 0; k < n; k++) {
      const i = (start + k) % n;
      if (!this.alive(i)) continue;
      const load = this.opts.state.shardGauge(i, S_CONNECTIONS);
      if (load < bestLoad) {
        best = i;
        bestLoad = load;
      }
    }
    return best;
  }

  private collectSnapshots(): Promise<string[][]> {
    return Promise.all(
      this.shards.map((h) => this.snapshots.request((id) => this.post(h.index, { type: 'admin:snapshot', id }), COLLECT_TIMEOUT_MS, () => [])),
    );
  }

  /** Graceful stop: every shard drains up to timeoutMs, then is terminated. */
  async stop(timeoutMs: number): Promise<void> {
    this.stopping = true;
    await Promise.all(
      this.shards.map(async (h) => {
        const w = h.worker;
        if (!w) return;
        const exited = new Promise<void>((resolve) => w.once('exit', () => resolve()));
        const drained = new Promise<void>((resolve) => {
          w.on('message', (m: ShardToPrimary) => m.type === 'drained' && resolve());
        });
        w.postMessage({ type: 'shutdown', timeoutMs } satisfies PrimaryToShard);
        await Promise.race([drained, exited, new Promise((r) => setTimeout(r, timeoutMs + 1000))]);
        await w.terminate();
      }),
    );
  }

  /** For tests and operators: kill one shard (it is restarted). */
  async kill(index: number): Promise<void> {
    await this.shards[index].worker?.terminate();
  }
}
