// Messages between the primary and a shard (besides the QUIC ones, which src/quic defines).
import type { Config } from '../config/types.ts';
import type { RateLimiterShared } from '../ratelimit/limiter.ts';

export interface ShardInit {
  shard: number;
  workers: number;
  /** Shards 0..quicShards-1 run QUIC (src/primary/primary.ts quicShardCount). */
  quicShards: number;
  config: Config;
  stateBuffer: SharedArrayBuffer;
  sessionBuffer: SharedArrayBuffer;
  certFile: string;
  keyFile: string;
  /** Key of the QUIC stateless reset tokens (src/wire/stateless-reset.ts), shared with the primary. */
  resetKey: Uint8Array;
  /** Session ticket keys (48 octets each) of the TLS (TCP) and quiche (QUIC) contexts, from the key ring. */
  tlsTicketKeys: Uint8Array;
  quicTicketKey: Uint8Array;
  startedAt: number;
  /** The primary's RateLimiter.create(config).shared: one client table for every shard, restarted ones too. */
  rateLimit: RateLimiterShared;
  /** The primary's ClientEventWindow (HTTP/2 and HTTP/3 stream resets per client) over frontendLimits' resetWindowMs. */
  resetWindowBuffer: SharedArrayBuffer;
  /**
   * The response cache's CacheSharedState buffer (src/shared/cache-state.ts: counters, coalescing signal),
   * present when the cache is on; the primary prepared the store (src/cache prepareCacheStore) before any shard.
   */
  cacheBuffer?: SharedArrayBuffer;
}

export type PrimaryToShard =
  | { type: 'tcp:conn'; socket: unknown; kind: 'http' | 'https' | 'admin' }
  | { type: 'admin:snapshot'; id: number }
  | { type: 'admin:collected'; id: number; snapshots: string[][] }
  | { type: 'shutdown'; timeoutMs: number };

export type ShardToPrimary =
  | { type: 'ready' }
  | { type: 'drained' }
  | { type: 'admin:collect'; id: number }
  | { type: 'admin:snapshot'; id: number; snapshot: string[] };
