// Starts the worker shards, restarts one that dies (only its own connections are lost), and answers
// the shards' admin requests that need every shard (merged latency histograms).
import { Worker } from 'node:worker_threads';
import type { TransferListItem } from 'node:worker_threads';
import type { Logger } from '../shared/logger.ts';
import { SharedState, S_ALIVE, S_CONNECTIONS, S_QUIC_CONNECTIONS, G_SHARD_RESTARTS } from '../shared/state.ts';
import type { ShardInit, ShardToPrimary } from '../shard/messages.ts';
import { CrashBackoff, type RestartPolicy } from './restart-backoff.ts';

const WORKER_URL = new URL('../shard/worker.ts', import.meta.url);
const COLLECT_TIMEOUT_MS = 1000;

export interface ShardHandle {
  index: number;
  worker: Worker | undefined;
  ready: boolean;
  /** Restarts over the whole run (the global count is G_SHARD_RESTARTS in /stats). */
  restarts: number;
  /** performance.now() when the current worker reported ready; 0 before. */
  readyAt: number;
  backoff: CrashBackoff;
}

export interface SupervisorOptions {
  count: number;
  init: Omit<ShardInit, 'shard'>;
  state: SharedState;
  logger: Logger;
  /** Messages the supervisor does not handle itself (QUIC). */
  onShardMessage(shard: number, msg: unknown): void;
  onShardDown(shard: number): void;
  onShardUp(shard: number): void;
  /** Restart delays (src/primary/restart-backoff.ts); DEFAULT_RESTART_POLICY when absent. */
  restartPolicy?: RestartPolicy;
}

export class ShardSupervisor {
  readonly shards: ShardHandle[] = [];
  private stopping = false;
  private nextSnapshot = 0;
  private tieBreak = 0;
  private readonly snapshotWaiters = new Map<number, (snapshot: string[]) => void>();
  private readonly opts: SupervisorOptions;

  constructor(opts: SupervisorOptions) {
    this.opts = opts;
    for (let i = 0; i < opts.count; i++) {
      this.shards.push({ index: i, worker: undefined, ready: false, restarts: 0, readyAt: 0, backoff: new CrashBackoff(opts.restartPolicy) });
    }
  }

  /** Resolves when every shard reported ready. */
  async start(): Promise<void> {
    await Promise.all(this.shards.map((s) => this.spawn(s)));
  }

  private spawn(handle: ShardHandle): Promise<void> {
    const { state, logger } = this.opts;
    const worker = new Worker(WORKER_URL, {
      workerData: { ...this.opts.init, shard: handle.index } satisfies ShardInit,
      name: `quiclb-shard-${handle.index}`,
    });
    handle.worker = worker;
    handle.ready = false;
    handle.readyAt = 0;
    return new Promise<void>((resolve) => {
      worker.on('message', (msg: ShardToPrimary | { type: string }) => {
        switch (msg.type) {
          case 'ready':
            handle.ready = true;
            handle.readyAt = performance.now();
            this.opts.onShardUp(handle.index);
            resolve();
            break;
          case 'admin:collect':
            void this.collectSnapshots().then((snapshots) =>
              worker.postMessage({ type: 'admin:collected', id: (msg as { id: number }).id, snapshots }),
            );
            break;
          case 'admin:snapshot': {
            const m = msg as { id: number; snapshot: string[] };
            this.snapshotWaiters.get(m.id)?.(m.snapshot);
            this.snapshotWaiters.delete(m.id);
            break;
          }
          case 'drained':
            break;
          default:
            this.opts.onShardMessage(handle.index, msg);
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

  post(index: number, msg: unknown, transfer?: readonly TransferListItem[]): boolean {
    const w = this.shards[index].worker;
    if (!w || !this.shards[index].ready) return false;
    w.postMessage(msg, transfer as TransferListItem[] | undefined);
    return true;
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

  private async collectSnapshots(): Promise<string[][]> {
    const replies = this.shards.map(
      (h) =>
        new Promise<string[]>((resolve) => {
          const id = this.nextSnapshot++;
          const timer = setTimeout(() => {
            this.snapshotWaiters.delete(id);
            resolve([]);
          }, COLLECT_TIMEOUT_MS);
          this.snapshotWaiters.set(id, (s) => {
            clearTimeout(timer);
            resolve(s);
          });
          if (!this.post(h.index, { type: 'admin:snapshot', id })) {
            clearTimeout(timer);
            this.snapshotWaiters.delete(id);
            resolve([]);
          }
        }),
    );
    return Promise.all(replies);
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
          w.on('message', (m: { type: string }) => m.type === 'drained' && resolve());
        });
        w.postMessage({ type: 'shutdown', timeoutMs });
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
