// Every message between the primary and a shard, as two typed unions (one per direction); nothing crosses
// the thread boundary untyped. Exchanges that expect an answer carry an `id` and go through PendingReplies
// (src/shared/replies.ts) on the asking side.
import type { Socket } from 'node:net';
import type { Config } from '../config/types.ts';
import type { ConfigStatus } from '../config/status.ts';
import type { RateLimiterShared } from '../ratelimit/limiter.ts';
import type { QuicInMessage, QuicOutMessage } from '../quic/messages.ts';
import type { TcpKind } from '../tcp/servers.ts';

/**
 * The key ring's keys a shard uses (src/primary/keys.ts derives them). A reload that finds the key ring
 * rotated brings new ones; a shard restarted later gets the current ones with the current generation.
 */
export interface ShardKeys {
  /** Stateless reset keys, newest first (src/wire/stateless-reset.ts): new CIDs use the first. */
  resetKeys: Uint8Array[];
  /** Session ticket keys (48 octets each) of the TLS (TCP) and quiche (QUIC) contexts. */
  tlsTicketKeys: Uint8Array;
  quicTicketKey: Uint8Array;
}

/**
 * One configuration generation as a shard applies it: the effective config (settings that need a restart
 * keep their running values), where each backend lives in SharedState, the TLS files to serve and the keys.
 */
export interface ShardGeneration {
  generation: number;
  config: Config;
  /** slots[i] is the SharedState slot of config.loadBalancer.backendServers[i] (src/primary/backend-slots.ts). */
  slots: number[];
  /** Slots taken by backends new in this generation: their per-shard latency history starts empty. */
  freshSlots: number[];
  certFile: string;
  keyFile: string;
  /** The rate limiter's shared tables (a reload that changes rateLimit.maxClients brings new ones). */
  rateLimit: RateLimiterShared;
  keys: ShardKeys;
}

export interface ShardInit {
  shard: number;
  workers: number;
  /** Shards 0..quicShards-1 run QUIC (src/primary/primary.ts quicShardCount). */
  quicShards: number;
  /** The generation the shard starts with: the current one, also for a restarted shard. */
  current: ShardGeneration;
  configStatus: ConfigStatus;
  stateBuffer: SharedArrayBuffer;
  sessionBuffer: SharedArrayBuffer;
  startedAt: number;
  /** The primary's ClientEventWindow (HTTP/2 and HTTP/3 stream resets per client) over frontendLimits' resetWindowMs. */
  resetWindowBuffer: SharedArrayBuffer;
  /**
   * The response cache's CacheSharedState buffer (src/shared/cache-state.ts: counters, coalescing signal),
   * present when the cache is on; the primary prepared the store (src/cache prepareCacheStore) before any shard.
   */
  cacheBuffer?: SharedArrayBuffer;
}

/** What a shard answers to config:apply. */
export type ApplyResult = { ok: true; generation: number } | { ok: false; generation: number; error: string };

export type PrimaryToShard =
  | { type: 'tcp:conn'; socket: Socket; kind: TcpKind }
  | QuicInMessage
  | { type: 'admin:snapshot'; id: number }
  | { type: 'admin:collected'; id: number; snapshots: string[][] }
  /** Build the request path of `next` and switch new requests to it; answered by config:applied. */
  | { type: 'config:apply'; id: number; next: ShardGeneration; status: ConfigStatus }
  /** The reload status changed without a new generation (a refused reload): for /stats. */
  | { type: 'config:status'; status: ConfigStatus }
  | { type: 'shutdown'; timeoutMs: number };

export type ShardToPrimary =
  /** Serving; `generation` is the one it started with. */
  | { type: 'ready'; generation: number }
  | { type: 'drained' }
  | QuicOutMessage
  | { type: 'admin:collect'; id: number }
  | { type: 'admin:snapshot'; id: number; snapshot: string[] }
  | { type: 'config:applied'; id: number; result: ApplyResult }
  /** No request of a generation below `below` is running on this shard any more (its backends may be forgotten). */
  | { type: 'config:drained'; below: number };
