// Configuration reload (SIGHUP, `quiclb reload`): read and validate the file again, then hand every shard a new
// generation without closing a connection or failing a request.
//
//   1. Load: the file and the env overrides through the one schema (src/config/load.ts), the certificate and
//      key (prepareTlsFiles), the key ring (src/primary/keys.ts), free backend slots. Anything wrong refuses
//      the whole reload: the running configuration and keys stay, the log line names the field, /stats
//      counts it (config.failedReloads).
//   2. Settings that need new sockets or threads keep their running values (src/config/reloadable.ts) and are
//      logged as "needs restart".
//   3. Slots (src/primary/backend-slots.ts): kept backends keep theirs; new ones take free slots, zeroed;
//      removed ones are marked SLOT_RETIRING at once, so no shard, whatever generation it runs, picks them
//      for a new request, while requests already on them finish.
//   4. Every shard builds the new request path and switches to it (config:apply, answered); the health
//      checker, the rate-limit tables and the log level follow. A rotated key ring travels in the generation
//      (new TLS and QUIC handshakes use the new ticket key, new CIDs the new reset key); the primary's UDP
//      router takes the new Retry and reset keys once the shards have answered (onKeysRotated).
//   5. A removed backend's slot is freed once every shard reported that no request of an older generation
//      is running (config:drained): only then may a new backend reuse the slot and its pinned sessions go.
import type { Config } from '../config/types.ts';
import type { ConfigStatus } from '../config/status.ts';
import { ConfigError, isConfigError } from '../config/errors.ts';
import { changedSettings, effectiveConfig, restartOnlyChanges } from '../config/reloadable.ts';
import type { Logger } from '../shared/logger.ts';
import { SLOT_FREE, SLOT_RETIRING, type SharedState } from '../shared/state.ts';
import type { SessionTable } from '../balancer/session-table.ts';
import type { ActiveHealthChecker } from '../health/active.ts';
import { RateLimiter, type RateLimiterShared } from '../ratelimit/limiter.ts';
import { MIN_CAPACITY } from '../ratelimit/client-table.ts';
import type { ShardGeneration } from '../shard/messages.ts';
import type { BackendSlots, SlotPlan } from './backend-slots.ts';
import { reloadPrimaryKeys, sameKeys, shardKeys, type PrimaryKeys } from './keys.ts';
import type { ShardSupervisor } from './shard-supervisor.ts';
import { prepareTlsFiles } from './tls-files.ts';

export interface ReloaderOptions {
  /** Reads and validates the configuration file again (env overrides applied); throws a ConfigError. */
  load(): Config;
  /** The generation quiclb started with (generation 1). */
  initial: ShardGeneration;
  /** The keys quiclb started with (the key ring behind initial.keys). */
  keys: PrimaryKeys;
  /** Reads the key ring of a configuration again; reloadPrimaryKeys (src/primary/keys.ts) when absent. */
  loadKeys?(config: Config): PrimaryKeys;
  /** Called with the new keys after a reload that found the key ring rotated, once the shards have answered. */
  onKeysRotated?(keys: PrimaryKeys): void;
  slots: BackendSlots;
  state: SharedState;
  sessions: SessionTable;
  supervisor: ShardSupervisor;
  health: ActiveHealthChecker;
  logger: Logger;
  status: ConfigStatus;
  /** Called with each applied configuration (the primary's own view: shutdown timeout, ...). */
  onApplied?(config: Config): void;
}

export type ReloadOutcome =
  | { ok: true; generation: number; added: string[]; removed: string[]; changed: string[]; needsRestart: string[]; shardErrors: string[]; keysRotated: boolean }
  | { ok: false; generation: number; field: string; error: string };

/** Client-table capacity RateLimiter.create() allocates for `config` (see src/ratelimit/limiter.ts). */
function tableCapacity(config: Config): number {
  return config.rateLimit.enabled ? config.rateLimit.maxClients : MIN_CAPACITY;
}

export class Reloader {
  private readonly opts: ReloaderOptions;
  private current: ShardGeneration;
  private keys: PrimaryKeys;
  private statusNow: ConfigStatus;
  private tableCap: number;
  private queue: Promise<unknown> = Promise.resolve();
  /** Per alive shard: no request of a generation below this runs there any more. */
  private readonly drainedBelow = new Map<number, number>();

  constructor(opts: ReloaderOptions) {
    this.opts = opts;
    this.current = opts.initial;
    this.keys = opts.keys;
    this.statusNow = opts.status;
    this.tableCap = tableCapacity(opts.initial.config);
  }

  get config(): Config {
    return this.current.config;
  }

  get status(): ConfigStatus {
    return this.statusNow;
  }

  get generation(): ShardGeneration {
    return this.current;
  }

  /** Reloads once; concurrent calls (SIGHUPs in a row) run one after the other. */
  reload(): Promise<ReloadOutcome> {
    const run = this.queue.then(() => this.reloadNow());
    this.queue = run.catch(() => undefined);
    return run;
  }

  shardUp(shard: number, generation: number): void {
    this.drainedBelow.set(shard, generation);
    this.freeDrainedSlots();
  }

  shardDown(shard: number): void {
    this.drainedBelow.delete(shard);
    this.freeDrainedSlots();
  }

  shardDrained(shard: number, below: number): void {
    this.drainedBelow.set(shard, Math.max(this.drainedBelow.get(shard) ?? 0, below));
    this.freeDrainedSlots();
  }

  /** Step 1 and 2: everything that can refuse the reload, before anything changes. */
  private async prepare(running: Config): Promise<{ next: Config; certFile: string; keyFile: string; keys: PrimaryKeys; needsRestart: string[]; plan: SlotPlan }> {
    const loaded = this.opts.load();
    if (loaded.loadBalancer.backendServers.length === 0) {
      throw ConfigError.at('loadBalancer.backendServers', 'expected at least one backend, got []');
    }
    const next = effectiveConfig(running, loaded);
    const { certFile, keyFile } = await prepareTlsFiles(next, this.opts.logger);
    const keys = (this.opts.loadKeys ?? reloadPrimaryKeys)(next);
    const plan = this.opts.slots.plan(next.loadBalancer.backendServers);
    // Against the running values (those quiclb started with): what the file asks for and only a restart gives.
    return { next, certFile, keyFile, keys, needsRestart: restartOnlyChanges(running, loaded), plan };
  }

  private async reloadNow(): Promise<ReloadOutcome> {
    const { logger } = this.opts;
    const running = this.current.config;
    let prepared;
    try {
      prepared = await this.prepare(running);
    } catch (err) {
      return this.refuse(err);
    }
    const { next, certFile, keyFile, keys, needsRestart, plan } = prepared;
    // Unchanged keys: the shards and the router keep what they have (the generation carries the same ones).
    const keysRotated = !sameKeys(this.keys, keys);

    const generation = this.current.generation + 1;
    const { state, sessions } = this.opts;
    for (const r of plan.removed) state.setSlotState(r.slot, SLOT_RETIRING);
    this.opts.slots.commit(plan, next.loadBalancer.backendServers, generation);
    const freshHealth = new Map(next.loadBalancer.backendServers.map((b, i) => [plan.slots[i], b.healthy]));
    for (const slot of plan.fresh) {
      // Freeing the slot forgot its sessions, but skipped any entry a writer held at that instant: a new
      // backend must not inherit one.
      sessions.forgetBackend(slot);
      state.initBackend(slot, freshHealth.get(slot) ?? true);
    }

    const nextGen: ShardGeneration = {
      generation,
      config: next,
      slots: plan.slots,
      freshSlots: plan.fresh,
      certFile,
      keyFile,
      rateLimit: this.rateLimitTables(next),
      keys: keysRotated ? shardKeys(keys) : this.current.keys,
    };
    const status: ConfigStatus = { generation, loadedAt: Date.now(), lastReloadError: null, failedReloads: this.statusNow.failedReloads, needsRestart };
    this.current = nextGen;
    this.statusNow = status;
    this.opts.health.update(next, plan.slots);
    logger.level = next.logging.level;
    this.opts.onApplied?.(next);

    const replies = await this.opts.supervisor.applyAll(nextGen, status);
    this.keys = keys;
    if (keysRotated) {
      // After the shards: CIDs the router mints for Retry carry the new key's tag only once the shards that
      // will own those connections derive the new key's tokens too.
      this.opts.onKeysRotated?.(keys);
      logger.info({ generation, file: keys.file, keys: keys.count }, 'key ring rotated: new handshakes get session tickets of its first key, new connections its reset key; Retry tokens of every key in it stay valid');
    }
    const shardErrors = replies.filter((r) => !r.result.ok).map((r) => `shard ${r.shard}: ${r.result.ok ? '' : r.result.error}`);
    const changed = changedSettings(running, next);
    const backendChanges = next.loadBalancer.backendServers
      .filter((b) => {
        const old = running.loadBalancer.backendServers.find((o) => o.id === b.id);
        return old !== undefined && JSON.stringify(old) !== JSON.stringify(b);
      })
      .map((b) => `loadBalancer.backendServers[${b.id}]`);
    const outcome: ReloadOutcome = {
      ok: true,
      generation,
      added: plan.added,
      removed: plan.removed.map((r) => r.id),
      changed: [...changed, ...backendChanges],
      needsRestart,
      shardErrors,
      keysRotated,
    };
    logger.info(
      {
        generation,
        added: outcome.added,
        removed: outcome.removed,
        changed: outcome.changed,
        backends: next.loadBalancer.backendServers.map((b, i) => `${b.id}=${b.socket ?? `${b.host}:${b.port}`}#${plan.slots[i]}`),
        shards: replies.length,
        needsRestart,
        keysRotated,
      },
      'configuration reloaded',
    );
    if (needsRestart.length > 0) {
      logger.warn({ generation, needsRestart }, `needs restart: ${needsRestart.join(', ')} changed; these keep their running values until quiclb restarts`);
    }
    if (shardErrors.length > 0) {
      // The other shards run the new generation; this one keeps serving with its previous one.
      this.statusNow = { ...status, lastReloadError: shardErrors.join('; ') };
      this.opts.supervisor.publishStatus(this.statusNow);
      logger.error({ generation, shardErrors }, 'configuration reload: some shards could not apply it and keep their previous configuration');
    }
    this.freeDrainedSlots();
    return outcome;
  }

  private refuse(err: unknown): ReloadOutcome {
    const config = isConfigError(err);
    const field = config ? err.path : 'config';
    const error = config ? err.message : `config: ${(err as Error)?.message ?? String(err)}`;
    this.statusNow = { ...this.statusNow, lastReloadError: error, failedReloads: this.statusNow.failedReloads + 1 };
    this.opts.supervisor.publishStatus(this.statusNow);
    this.opts.logger.error(
      { field, error, failedReloads: this.statusNow.failedReloads, generation: this.current.generation },
      `configuration reload refused: ${error}; the running configuration (generation ${this.current.generation}) stays`,
    );
    if (!config) this.opts.logger.debug({ err }, 'configuration reload failure');
    return { ok: false, generation: this.current.generation, field, error };
  }

  /**
   * The shared rate-limit tables for `next`: the running ones, or, when rateLimit.maxClients (or turning the
   * limiter on) needs another capacity, a new client table beside the same refusal counters. Connections
   * counted in the old table give their place back there when they close.
   */
  private rateLimitTables(next: Config): RateLimiterShared {
    const cap = tableCapacity(next);
    if (!next.rateLimit.enabled || cap === this.tableCap) return this.current.rateLimit;
    this.tableCap = cap;
    return { table: RateLimiter.create(next).shared.table, counters: this.current.rateLimit.counters };
  }

  private freeDrainedSlots(): void {
    // A shard still starting will run the generation it was started with until it catches up.
    const below = [...this.drainedBelow.values(), ...this.opts.supervisor.startingGenerations()];
    for (const r of this.opts.slots.retired()) {
      if (!below.every((b) => b >= r.generation)) continue;
      this.opts.state.setSlotState(r.slot, SLOT_FREE);
      const forgotten = this.opts.sessions.forgetBackend(r.slot);
      this.opts.slots.release(r.slot);
      this.opts.logger.info({ backend: r.id, slot: r.slot, sessionsForgotten: forgotten }, 'removed backend: its last requests ended; slot freed');
    }
  }
}
