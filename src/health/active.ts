// Active health checks, primary thread only: one probe per backend every healthCheck.intervalMs, each
// result fed to that backend's HealthStateMachine; transitions are published to every shard through
// B_HEALTHY in SharedState (compare-and-set, so a passive transition raced by a shard is logged once).
// When healthCheck.enabled is false no probe is sent and backends keep their configured health, but
// PassiveRecovery runs so a passively downed backend is re-admitted after a cool-down (passive.ts).
import { Agent } from 'undici';
import type { Logger } from 'pino';
import type { BackendConfig, Config } from '../config/types.ts';
import { B_ENABLED, B_HEALTHY, B_PASSIVE_FAILS, BC_HEALTH_TRANSITIONS, type SharedState } from '../shared/state.ts';
import { parseExpectStatus, type StatusMatcher } from './expect-status.ts';
import { PassiveRecovery } from './passive.ts';
import { probe, type ProbeResult } from './probe.ts';
import { probeFastCgi, probePool } from './probe-fastcgi.ts';
import type { FastCgiPool } from '../fastcgi/pool.ts';
import { wwwRootDirectory } from '../config/www-root.ts';
import { HealthStateMachine } from './state-machine.ts';

export interface ActiveHealthCheckerOptions {
  config: Config;
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

export class ActiveHealthChecker {
  private readonly config: Config;
  private readonly state: SharedState;
  private readonly logger: Logger;
  private readonly machines: HealthStateMachine[];
  private readonly matchStatus: StatusMatcher;
  private readonly hostHeader: string | undefined;
  private readonly recovery: PassiveRecovery;
  private agent: Agent | undefined;
  /** FastCGI backends' probe pools, by backend index. */
  private readonly fastCgiPools = new Map<number, FastCgiPool>();
  /** One probe per backend at a time: a second request for a round joins the one in flight. */
  private readonly inflight = new Map<number, Promise<void>>();
  private readonly cancel = new AbortController();
  private timer: NodeJS.Timeout | undefined;
  private running = false;
  private round: Promise<void> | undefined;

  constructor(opts: ActiveHealthCheckerOptions) {
    this.config = opts.config;
    this.state = opts.state;
    this.logger = opts.logger.child({ component: 'health' });
    const hc = opts.config.healthCheck;
    this.matchStatus = parseExpectStatus(hc.expectStatus);
    this.hostHeader = hostHeaderFrom(opts.config.moodle.wwwRoot);
    this.machines = opts.config.loadBalancer.backendServers.map(
      (b) => new HealthStateMachine(b.healthy, { healthyThreshold: hc.healthyThreshold, unhealthyThreshold: hc.unhealthyThreshold }),
    );
    this.recovery = new PassiveRecovery({ config: opts.config, state: opts.state, logger: this.logger, cooldownMs: opts.passiveCooldownMs });
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
    this.recovery.stop();
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
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
    await Promise.all(this.config.loadBalancer.backendServers.map((b, i) => this.checkBackend(b, i)));
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
          if (this.running) this.schedule(hc.intervalMs + Math.random() * hc.intervalMs * 0.1);
        });
    }, delayMs);
    this.timer.unref();
  }

  private dispatcher(): Agent {
    this.agent ??= new Agent({ connections: 1, connect: { timeout: this.config.healthCheck.timeoutMs } });
    return this.agent;
  }

  private checkBackend(b: BackendConfig, index: number): Promise<void> {
    const existing = this.inflight.get(index);
    if (existing) return existing;
    const p = this.probe(b, index)
      .then((result) => {
        if (!this.cancel.signal.aborted) this.apply(b, index, result);
      })
      .finally(() => this.inflight.delete(index));
    this.inflight.set(index, p);
    return p;
  }

  /** HTTP backends get GET healthCheck.path; FastCGI backends get the same path run as a FastCGI request. */
  private probe(b: BackendConfig, index: number): Promise<ProbeResult> {
    const hc = this.config.healthCheck;
    if (b.protocol === 'fastcgi') {
      let pool = this.fastCgiPools.get(index);
      if (pool === undefined) this.fastCgiPools.set(index, (pool = probePool(b, hc.timeoutMs)));
      const documentRoot = wwwRootDirectory(this.config.moodle) ?? '/';
      return probeFastCgi(pool, { documentRoot, path: hc.path, timeoutMs: hc.timeoutMs, matchStatus: this.matchStatus }, this.cancel.signal);
    }
    return probe(
      this.dispatcher(),
      { host: b.host, port: b.port, path: hc.path, hostHeader: this.hostHeader, timeoutMs: hc.timeoutMs, matchStatus: this.matchStatus },
      this.cancel.signal,
    );
  }

  private apply(b: BackendConfig, index: number, result: ProbeResult): void {
    const m = this.machines[index];
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
