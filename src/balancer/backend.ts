// The balancer's view of one configured backend. A backend is identified everywhere by `index`, its slot in
// SharedState: the same slot addresses its gauges and counters in every thread, so no thread needs a lookup
// table to share load information. Slots are stable by backend id across configuration reloads (the primary
// assigns them, src/primary/backend-slots.ts); without a reload, slot i is loadBalancer.backendServers[i].
import type { BackendConfig, BackendProtocol } from '../config/types.ts';
import { slotAt } from '../shared/state.ts';

export interface Backend {
  /** The backend's slot in SharedState (and in the session table and the latency histograms). */
  index: number;
  id: string;
  /** 'http' (undici) or 'fastcgi' (php-fpm straight, src/fastcgi). */
  protocol: BackendProtocol;
  host: string;
  port: number;
  weight: number;
  /** 0 = unlimited. */
  maxConnections: number;
  group: string;
}

export const DEFAULT_GROUP = 'default';

/**
 * Snapshot the configured backends; the result is never mutated (strategies keep references).
 * `slots[i]` is the slot of `servers[i]` (the primary's assignment); absent: position = slot.
 */
export function backendsFromConfig(servers: readonly BackendConfig[], slots?: readonly number[]): Backend[] {
  return servers.map((s, i) =>
    Object.freeze({
      index: slotAt(slots, i),
      id: s.id,
      protocol: s.protocol,
      host: s.host,
      port: s.port,
      // The schema validates weight >= 1; a hand-built config with 0 or NaN still gets a usable share
      // instead of starving the weighted strategies or dividing by zero.
      weight: Number.isFinite(s.weight) && s.weight > 0 ? s.weight : 1,
      maxConnections: s.maxConnections > 0 ? s.maxConnections : 0,
      group: s.group || DEFAULT_GROUP,
    }),
  );
}
