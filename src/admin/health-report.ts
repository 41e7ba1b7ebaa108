// GET /health: is this balancer able to serve? 200 while at least one backend can take traffic, 503
// when none can, so an external monitor or an upstream load balancer can act on the status code alone.
import type { Config } from '../config/types.ts';
import { B_ENABLED, B_HEALTHY, slotAt, type SharedState } from '../shared/state.ts';

export interface HealthReport {
  /** ok: every enabled backend is healthy; degraded: some are down; down: none can take traffic. */
  status: 'ok' | 'degraded' | 'down';
  backends: Array<{ id: string; healthy: boolean; enabled: boolean }>;
  /** Backends that can take traffic: healthy and not drained. */
  healthyBackends: number;
  totalBackends: number;
}

/** `slots[i]`: the SharedState slot of backendServers[i] (absent: position = slot). */
export function buildHealthReport(config: Config, state: SharedState, slots?: readonly number[]): { statusCode: 200 | 503; body: HealthReport } {
  const backends = config.loadBalancer.backendServers.map((b, i) => ({
    id: b.id,
    healthy: state.backendGauge(slotAt(slots, i), B_HEALTHY) === 1,
    enabled: state.backendGauge(slotAt(slots, i), B_ENABLED) === 1,
  }));
  const healthyBackends = backends.filter((b) => b.healthy && b.enabled).length;
  // A drained backend is the operator's choice, not a failure: it does not make us "degraded".
  const failing = backends.some((b) => b.enabled && !b.healthy);
  const status = healthyBackends === 0 ? 'down' : failing ? 'degraded' : 'ok';
  return {
    statusCode: healthyBackends > 0 ? 200 : 503,
    body: { status, backends, healthyBackends, totalBackends: backends.length },
  };
}
