// Passive health: every shard reports each backend attempt here. A streak of failures (connection
// error, timeout, 5xx) reaching healthCheck.passiveFailureThreshold marks the backend down at once,
// without waiting for the next active check. Recovery normally comes from the active checker, which
// adopts the "down" state and needs healthyThreshold successes (see active.ts).
//
// When active checks are disabled nothing would ever bring such a backend back, so PassiveRecovery
// (run by the primary, see ActiveHealthChecker.start) re-admits it after a cool-down, half-open: it
// puts the backend back with its failure streak at threshold - 1, so the first failed request after
// re-admission trips it again for another cool-down, while a success clears the streak for good. This
// is nginx's max_fails/fail_timeout behaviour; requests already racing to the backend when it comes
// back may make more than one trial, which is harmless.
import type { Logger } from 'pino';
import type { Config } from '../config/types.ts';
import { B_HEALTHY, B_PASSIVE_FAILS, BC_HEALTH_TRANSITIONS, slotAt, type SharedState } from '../shared/state.ts';

export const DEFAULT_PASSIVE_COOLDOWN_MS = 10_000;

/**
 * Hot path: called after every backend attempt. `threshold` <= 0 disables passive marking (the streak
 * is still counted, for /stats and for half-open re-admission).
 */
export function recordBackendResult(state: SharedState, index: number, ok: boolean, threshold: number, logger: Logger, backendId: string): void {
  if (ok) {
    // Load first: with no streak (the common case) a success writes nothing to the shared line.
    if (state.backendGauge(index, B_PASSIVE_FAILS) !== 0) state.setBackendGauge(index, B_PASSIVE_FAILS, 0);
    return;
  }
  const fails = state.addBackendGauge(index, B_PASSIVE_FAILS, 1);
  if (threshold <= 0 || fails < threshold) return;
  // Several shards may cross the threshold at once; the compare-and-set lets exactly one of them own
  // (count and log) the transition.
  if (state.casBackendGauge(index, B_HEALTHY, 1, 0)) {
    state.addBackendCounter(index, BC_HEALTH_TRANSITIONS);
    logger.warn({ backend: backendId, index, reason: 'passive', consecutiveFailures: fails, threshold }, 'backend marked down');
  }
}

export interface PassiveRecoveryOptions {
  config: Config;
  /** SharedState slot of each of config.loadBalancer.backendServers (same order); absent: position = slot. */
  slots?: readonly number[];
  state: SharedState;
  logger: Logger;
  cooldownMs?: number;
}

/** Primary-only cool-down re-admission for passively downed backends when active checks are off. */
export class PassiveRecovery {
  private config: Config;
  private slots: readonly number[] | undefined;
  private readonly state: SharedState;
  private readonly logger: Logger;
  readonly cooldownMs: number;
  /** When each backend slot was first seen down (ms, monotonic clock); absent while it is up. */
  private readonly downSince = new Map<number, number>();
  private timer: NodeJS.Timeout | undefined;

  constructor(opts: PassiveRecoveryOptions) {
    this.config = opts.config;
    this.slots = opts.slots;
    this.state = opts.state;
    this.logger = opts.logger;
    this.cooldownMs = opts.cooldownMs ?? DEFAULT_PASSIVE_COOLDOWN_MS;
  }

  /** A reload: these backends, this threshold. */
  update(config: Config, slots?: readonly number[]): void {
    this.config = config;
    this.slots = slots;
    const live = new Set(config.loadBalancer.backendServers.map((_, i) => slotAt(slots, i)));
    for (const slot of this.downSince.keys()) if (!live.has(slot)) this.downSince.delete(slot);
  }

  start(): void {
    if (this.timer) return;
    const every = Math.max(10, Math.min(1000, Math.floor(this.cooldownMs / 4)));
    this.timer = setInterval(() => this.tick(performance.now()), every);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  /** One scan; exposed so tests can step the clock. Returns the slots re-admitted. */
  tick(now: number): number[] {
    const readmitted: number[] = [];
    const threshold = this.config.healthCheck.passiveFailureThreshold;
    this.config.loadBalancer.backendServers.forEach((b, position) => {
      const i = slotAt(this.slots, position);
      if (this.state.backendGauge(i, B_HEALTHY) === 1) {
        this.downSince.delete(i);
        return;
      }
      // A backend configured down and never transitioned stays down: that is the operator's choice.
      if (!b.healthy && this.state.backendCounter(i, BC_HEALTH_TRANSITIONS) === 0n) return;
      const since = this.downSince.get(i);
      if (since === undefined) {
        this.downSince.set(i, now);
        return;
      }
      if (now - since < this.cooldownMs) return;
      // Half-open: one more failure re-trips it (recordBackendResult sees fails reach threshold).
      this.state.setBackendGauge(i, B_PASSIVE_FAILS, Math.max(0, threshold - 1));
      if (this.state.casBackendGauge(i, B_HEALTHY, 0, 1)) {
        this.state.addBackendCounter(i, BC_HEALTH_TRANSITIONS);
        this.logger.info({ backend: b.id, index: i, reason: 'passive cool-down elapsed (half-open)', downForMs: Math.round(now - since) }, 'backend marked up');
        readmitted.push(i);
      }
      this.downSince.delete(i);
    });
    return readmitted;
  }
}
