// Active health checks, primary thread only: one probe per backend every healthCheck.intervalMs, each
// result fed to that backend's HealthStateMachine; transitions are published to every shard through
// B_HEALTHY in SharedState (compare-and-set, so a passive transition raced by a shard is logged once).
// When healthCheck.enabled is false no probe is sent and backends keep their configured health, but
// PassiveRecovery runs so a passively downed backend is re-admitted after a cool-down (passive.ts).
// A configuration reload hands the checker the new settings and backends (update()): a backend that stays
// keeps its state machine (its streak), a removed one is no longer probed, a new one starts fresh.
import { Agent } from 'undici';
import type { Logger } from 'pino';
import type { BackendConfig, Config } from '../config/types.ts';
import { B_ENABLED, B_HEALTHY, B_PASSIVE_FAILS, BC_HEALTH_TRANSITIONS, slotAt, type SharedState } from '../shared/state.ts';
import { parseExpectStatus, type StatusMatcher } from './expect-status.ts';
import { PassiveRecovery } from './passive.ts';
import { probe, type ProbeResult } from './probe.ts';
import { probeFastCgi, probePool } from './probe-fastcgi.ts';
import type { FastCgiPool } from '../fastcgi/pool.ts';
import { wwwRootDirectory } from '../config/www-root.ts';
import { HealthStateMachine } from './state-machine.ts';

export interface ActiveHealthCheckerOptions {
  config: Config;
  /** SharedState slot of each of config.loadBalancer.backendServers (same order); absent: position = slot. */
  slots?: readonly number[];
  state: SharedState;
  logger: Logger;
  /** Cool-down for PassiveRecovery when active checks are disabled; default 10 s. */
  passiveCooldownMs?: number;
}

/** Host header for probes: the host of moodle.wwwRoot, so name-based virtual hosts answer. */
function hostHeaderFrom(wwwRoot: string | undefined): string | undefined {
  if (!wwwRoot) return undefined;
  try {
    return new URL(wwwRoot).host || undefined;
  } catch {
    return undefined;
  }
}

/** One probed backend: its config, its slot, and its streak (kept across reloads while the id stays). */
interface Target {
  backend: BackendConfig;
  slot: number;
  machine: HealthStateMachine;
}

export class ActiveHealthChecker {
  private config: Config;
  private readonly state: SharedState;
  private readonly logger: Logger;
  private targets: Target[];
  private matchStatus: StatusMatcher;
  private hostHeader: string | undefined;
  private readonly recovery: PassiveRecovery;
  private agent: Agent | undefined;
  /** FastCGI backends' probe pools, by backend id and address (a reload may move a slot to another backend). */
  private readonly fastCgiPools = new Map<string, FastCgiPool>();
  /** One probe per backend slot at a time: a second request for a round joins the one in flight. */
  private readonly inflight = new Map<number, Promise<void>>();
  private readonly cancel = new AbortController();
  private timer: NodeJS.Timeout | undefined;
  private running = false;
  private round: Promise<void> | undefined;

  constructor(opts: ActiveHealthCheckerOptions) {
    this.config = opts.config;
    this.state = opts.state;
    this.logger = opts.logger.child({ component: 'health' });
    this.matchStatus = parseExpectStatus(opts.config.healthCheck.expectStatus);
    this.hostHeader = hostHeaderFrom(opts.config.moodle.wwwRoot);
    this.targets = this.targetsFor(opts.config, opts.slots, new Map());
    this.recovery = new PassiveRecovery({ config: opts.config, slots: opts.slots, state: opts.state, logger: this.logger, cooldownMs: opts.passiveCooldownMs });
  }

  private targetsFor(config: Config, slots: readonly number[] | undefined, previous: ReadonlyMap<string, Target>): Target[] {
    const hc = config.healthCheck;
    const thresholds = { healthyThreshold: hc.healthyThreshold, unhealthyThreshold: hc.unhealthyThreshold };
    return config.loadBalancer.backendServers.map((backend, i) => {
      const slot = slotAt(slots, i);
      const kept = previous.get(backend.id);
      // A kept backend keeps its streak unless the thresholds changed; a new one starts from its shared state.
      const same = kept !== undefined && kept.slot === slot && sameThresholds(kept.machine, thresholds);
      const machine = same ? kept.machine : new HealthStateMachine(kept === undefined ? backend.healthy : this.state.backendGauge(slot, B_HEALTHY) === 1, thresholds);
      return { backend, slot, machine };
    });
  }

  /**
   * A reload: probe these backends with these settings from now on. Probes in flight for removed backends
   * finish and are ignored; the next round follows the new interval.
   */
  update(config: Config, slots?: readonly number[]): void {
    const wasEnabled = this.config.healthCheck.enabled;
    const intervalChanged = config.healthCheck.intervalMs !== this.config.healthCheck.intervalMs;
    this.targets = this.targetsFor(config, slots, new Map(this.targets.map((t) => [t.backend.id, t])));
    this.config = config;
    this.matchStatus = parseExpectStatus(config.healthCheck.expectStatus);
    this.hostHeader = hostHeaderFrom(config.moodle.wwwRoot);
    // The agent's connect timeout is healthCheck.timeout: a new one for the new value.
    const agent = this.agent;
    this.agent = undefined;
    void agent?.close().catch(() => undefined);
    this.recovery.update(config, slots);
    if (!this.running) return;
    if (wasEnabled !== config.healthCheck.enabled) {
      this.stopTimers();
      this.running = false;
      this.start();
    } else if (intervalChanged && this.timer !== undefined) {
      clearTimeout(this.timer);
      this.schedule(0);
    }
  }

  private stopTimers(): void {
    this.recovery.stop();
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    if (!this.config.healthCheck.enabled) {
      this.logger.info({ passiveCooldownMs: this.recovery.cooldownMs }, 'active health checks disabled; passive cool-down re-admission only');
      this.recovery.start();
      return;
    }
    // First round right away; a little jitter keeps many balancers from probing in lock-step.
    this.schedule(Math.random() * Math.min(100, this.config.healthCheck.intervalMs / 10));
  }

  async stop(): Promise<void> {
    this.running = false;
    this.stopTimers();
    this.cancel.abort();
    // Probes in flight end at once (a FastCGI probe has no signal of its own: destroying its pool ends it).
    const pools = [...this.fastCgiPools.values()];
    this.fastCgiPools.clear();
    await Promise.all([...pools.map((p) => p.destroy()), Promise.allSettled([...this.inflight.values(), this.round])]);
    const agent = this.agent;
    this.agent = undefined;
    await agent?.destroy();
  }

  /** Probe every backend once and apply the results; resolves when all are applied. */
  async checkNow(): Promise<void> {
    if (!this.config.healthCheck.enabled || this.cancel.signal.aborted) return;
    await Promise.all(this.targets.map((t) => this.checkBackend(t)));
  }

  private schedule(delayMs: number): void {
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.round = this.checkNow()
        .catch((err: unknown) => this.logger.error({ err }, 'health check round failed'))
        .finally(() => {
          this.round = undefined;
          // Next round after this one ends, so rounds never pile up behind a slow backend.
          const hc = this.config.healthCheck;
          if (this.running && hc.enabled && this.timer === undefined) this.schedule(hc.intervalMs + Math.random() * hc.intervalMs * 0.1);
        });
    }, delayMs);
    this.timer.unref();
  }

  private dispatcher(): Agent {
    this.agent ??= new Agent({ connections: 1, connect: { timeout: this.config.healthCheck.timeoutMs } });
    return this.agent;
  }

  private checkBackend(t: Target): Promise<void> {
    const { backend: b, slot: index } = t;
    const existing = this.inflight.get(index);
    if (existing) return existing;
    const p = this.probe(b, index)
      .then((result) => {
        // A reload may have removed or moved the backend while its probe ran: only a result for the address
        // it still has counts.
        const now = this.targets.find((x) => x.slot === t.slot && x.backend.id === b.id && x.backend.host === b.host && x.backend.port === b.port);
        if (!this.cancel.signal.aborted && now !== undefined) this.apply(now, result);
      })
      .finally(() => this.inflight.delete(index));
    this.inflight.set(index, p);
    return p;
  }

  /** HTTP backends get GET healthCheck.path; FastCGI backends get the same path run as a FastCGI request. */
  private probe(b: BackendConfig, _index: number): Promise<ProbeResult> {
    const hc = this.config.healthCheck;
    if (b.protocol === 'fastcgi') {
      const key = `${b.id}|${b.socket ?? `${b.host}:${b.port}`}`;
      let pool = this.fastCgiPools.get(key);
      if (pool === undefined) this.fastCgiPools.set(key, (pool = probePool(b, hc.timeoutMs)));
      const documentRoot = wwwRootDirectory(this.config.moodle) ?? '/';
      return probeFastCgi(pool, { documentRoot, path: hc.path, timeoutMs: hc.timeoutMs, matchStatus: this.matchStatus }, this.cancel.signal);
    }
    return probe(
      this.dispatcher(),
      { host: b.host, port: b.port, path: hc.path, hostHeader: this.hostHeader, timeoutMs: hc.timeoutMs, matchStatus: this.matchStatus },
      this.cancel.signal,
    );
  }

  private apply(t: Target, result: ProbeResult): void {
    const { backend: b, slot: index, machine: m } = t;
    const sharedHealthy = this.state.backendGauge(index, B_HEALTHY) === 1;
    // A shard's passive check may have marked it down since our last look: start from "down" with an
    // empty streak, so it takes healthyThreshold good probes to return.
    if (sharedHealthy !== m.healthy) m.reset(sharedHealthy);
    m.setEnabled(this.state.backendGauge(index, B_ENABLED) === 1);
    const transition = m.observe(result.ok);
    const hc = this.config.healthCheck;
    const fields = {
      backend: b.id,
      index,
      reason: result.reason,
      status: result.status,
      durationMs: Math.round(result.durationMs),
      consecutiveSuccesses: m.consecutiveSuccesses,
      consecutiveFailures: m.consecutiveFailures,
    };
    if (transition === 'down') {
      if (this.state.casBackendGauge(index, B_HEALTHY, 1, 0)) {
        this.state.addBackendCounter(index, BC_HEALTH_TRANSITIONS);
        this.logger.warn({ ...fields, threshold: hc.unhealthyThreshold }, 'backend marked down');
      }
    } else if (transition === 'up') {
      // Clear the passive streak first, so shards never see "healthy" with a streak one failure short
      // of tripping again.
      this.state.setBackendGauge(index, B_PASSIVE_FAILS, 0);
      if (this.state.casBackendGauge(index, B_HEALTHY, 0, 1)) {
        this.state.addBackendCounter(index, BC_HEALTH_TRANSITIONS);
        this.logger.info({ ...fields, threshold: hc.healthyThreshold }, 'backend marked up');
      }
    } else if (!result.ok) {
      this.logger.debug(fields, 'health check failed');
    }
  }
}

function sameThresholds(m: HealthStateMachine, t: { healthyThreshold: number; unhealthyThreshold: number }): boolean {
  return m.thresholds.healthyThreshold === Math.max(1, Math.floor(t.healthyThreshold)) && m.thresholds.unhealthyThreshold === Math.max(1, Math.floor(t.unhealthyThreshold));
}
