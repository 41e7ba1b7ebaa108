// What the admin endpoints need from the shard that serves them.
import type { Logger } from 'pino';
import type { Config } from '../config/types.ts';
import type { SharedState } from '../shared/state.ts';
import type { RateLimiter } from '../ratelimit/limiter.ts';
import type { CacheSnapshot } from '../shared/cache-state.ts';
import type { ConfigStatus } from '../config/status.ts';

export interface AdminContext {
  /** The configuration generation this context serves (a reload builds a new context). */
  config: Config;
  /** SharedState slot of each of config.loadBalancer.backendServers (same order); absent: position = slot. */
  slots?: readonly number[];
  /** Reload status for /stats `config` (it changes without a new generation when a reload is refused). */
  configStatus?: () => ConfigStatus;
  state: SharedState;
  /** Process start, ms since the epoch (Date.now()). */
  startedAt: number;
  /** Every shard's LatencyRecorder.snapshot(); the lead wires the message round trip to the primary. */
  collectLatency(): Promise<string[][]>;
  /** Number of shards. */
  workers: number;
  /** Optional: where admin-path problems (latency collection failing) are reported. */
  logger?: Logger;
  /** The shard's view of the shared rate limiter (its refusal counters cover every shard); absent: zeros. */
  limiter?: RateLimiter;
  /** The shard's response cache (src/cache ResponseCache); absent when the cache is off. */
  cache?: AdminCache;
}

/** What the admin endpoints use of the response cache: its counters (shared by all shards) and purge. */
export interface AdminCache {
  stats(): CacheSnapshot;
  /** Removes stored responses whose URL (or, for a prefix starting with "/", path) starts with `prefix`; all without one. */
  purge(prefix?: string): number;
}
