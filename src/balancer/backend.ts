// The balancer's view of one configured backend. A backend is identified everywhere by `index`, its
// position in config.loadBalancer.backendServers; the same index addresses its gauges in SharedState in
// every thread, so no thread needs a lookup table to share load information.
import type { BackendConfig, BackendProtocol } from '../config/types.ts';

export interface Backend {
  /** Position in loadBalancer.backendServers and in SharedState. */
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

/** Snapshot the configured backends; the result is never mutated (strategies keep references). */
export function backendsFromConfig(servers: readonly BackendConfig[]): Backend[] {
  return servers.map((s, index) =>
    Object.freeze({
      index,
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
