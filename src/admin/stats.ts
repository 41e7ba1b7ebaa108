// GET /stats: one JSON document with everything an operator looks at first. Counters are read from
// SharedState (Atomics, no round trip); latency comes from the shards' merged histograms.
import type { Histogram } from 'hdr-histogram-js';
import type { Config } from '../config/types.ts';
import {
  B_ACTIVE,
  B_ENABLED,
  B_HEALTHY,
  BC_ERRORS,
  BC_FAILOVERS,
  BC_REQUESTS,
  CC_BYTES_IN,
  CC_BYTES_OUT,
  CC_RESPONSES,
  COMPRESSION_CODINGS,
  type CompressionCoding,
  G_DROP_BAD_HEADER,
  G_DROP_BAD_TOKEN,
  G_DROP_INITIAL_TOO_SHORT,
  G_DROP_QUEUE_FULL,
  G_DROP_SHARD_ERROR,
  G_DROP_SHORT_UNKNOWN_CID,
  G_QUIC_HANDSHAKES,
  G_QUIC_MIGRATIONS,
  G_QUIC_NAT_REBINDINGS,
  G_QUIC_OLD_PATH_PROBES,
  G_QUIC_RETRIES,
  G_REQ_HTTP1,
  G_REQ_HTTP2,
  G_REQ_HTTP3,
  G_SHARD_RESTARTS,
  G_UNCAUGHT_ERRORS,
  G_QUIC_STATELESS_RESETS,
  G_QUIC_RESETS_RATE_LIMITED,
  G_VERSION_NEGOTIATIONS,
  S_ALIVE,
  S_CONNECTIONS,
  S_QUIC_CONNECTIONS,
  SC_REQUESTS,
  slotAt,
  WS_OPEN,
  WS_OPENED,
  type SharedState,
} from '../shared/state.ts';
import { initialConfigStatus, type ConfigStatus } from '../config/status.ts';
import type { RateLimitStats } from '../ratelimit/limiter.ts';
import type { CacheSnapshot } from '../shared/cache-state.ts';
import { summarizeMs, type LatencySummaryMs } from './latency.ts';
import { QUICLB_VERSION } from './version.ts';

export interface StatsInput {
  config: Config;
  /** SharedState slot of each of config.loadBalancer.backendServers (same order); absent: position = slot. */
  slots?: readonly number[];
  /** The reload status (src/primary/reload.ts); absent: reported as the first generation, loaded at startedAt. */
  configStatus?: ConfigStatus;
  state: SharedState;
  startedAt: number;
  workers: number;
  /** Merged per-backend latency (LatencyRecorder.merge), indexed by slot; missing entries read as "no data". */
  latency: Histogram[];
  /** The rate limiter's counters (src/ratelimit, shared by all shards); absent: reported as zeros. */
  rateLimit?: RateLimitSnapshot;
  /** The response cache's counters (src/shared/cache-state.ts); absent when the cache is off. */
  cache?: CacheSnapshot;
}

export interface RateLimitSnapshot extends RateLimitStats {
  enabled: boolean;
}

/** What /stats and /metrics report without a limiter (unit tests, tools): off, nothing refused. */
export const NO_RATE_LIMIT: RateLimitSnapshot = {
  enabled: false,
  limited: { general: 0, login: 0, connections: 0 },
  table: { capacity: 0, evictions: 0, overflows: 0, stolenLocks: 0 },
};

export interface BackendStats {
  id: string;
  /** 'http' or 'fastcgi' (php-fpm straight). */
  protocol: 'http' | 'fastcgi';
  /** '' and 0 for a FastCGI backend on a unix socket (then `socket`). */
  host: string;
  port: number;
  socket?: string;
  /** Configured weight (weighted and least-connections strategies). */
  weight: number;
  group: string;
  healthy: boolean;
  enabled: boolean;
  activeConnections: number;
  requests: number;
  errors: number;
  failovers: number;
  latencyMs: LatencySummaryMs;
}

export interface ShardStats {
  index: number;
  alive: boolean;
  connections: number;
  quicConnections: number;
  requests: number;
  /** WebSocket tunnels open on this shard now, and opened since it started (src/proxy/websocket.ts). */
  webSockets: { open: number; opened: number };
}

export interface Stats {
  uptimeSeconds: number;
  version: string;
  workers: number;
  /**
   * The running configuration: its generation (+1 per applied reload), when it was loaded, refused reloads, and
   * the settings the file changed that wait for a restart.
   */
  config: ConfigStatus;
  protocols: { 'HTTP/1.1': number; 'HTTP/2': number; 'HTTP/3': number };
  backends: BackendStats[];
  shards: ShardStats[];
  quic: {
    handshakes: number;
    migrations: number;
    natRebindings: number;
    oldPathProbes: number;
    retries: number;
    /** Stateless resets sent (RFC 9000 §10.3) for packets of connections no shard has, and those the rate limit held back. */
    statelessResets: number;
    statelessResetsRateLimited: number;
    versionNegotiations: number;
    dropped: { unknownCid: number; badHeader: number; initialTooShort: number; queueFull: number; badToken: number; shardError: number };
  };
  /** WebSocket tunnels over all shards: open now, and opened since quiclb started (a shard restart loses its open ones). */
  webSockets: { open: number; opened: number };
  shardRestarts: number;
  /** Exceptions that escaped every per-request and per-connection boundary (each one is a bug, logged). */
  uncaughtErrors: number;
  /** Responses compressed by quiclb (src/compress) and their body bytes before and after, per coding. */
  compression: Record<CompressionCoding, { responses: number; bytesIn: number; bytesOut: number }>;
  /**
   * rateLimit: refusals by reason (general and login buckets answered 429, connections closed at
   * maxConnectionsPerClient) and the client table (capacity, clients recycled, operations left untracked).
   */
  rateLimit: {
    enabled: boolean;
    limited: { general: number; login: number; connections: number };
    clients: { capacity: number; evictions: number; overflows: number; stolenLocks: number };
  };
  /**
   * The response cache, over every shard (present only when it is on): the counters of
   * src/shared/cache-state.ts, `bytes` and `entries` stored, and `hitRatio` = hits / (hits + misses).
   */
  cache?: CacheSnapshot & { hitRatio: number };
}

/** hits / (hits + misses), 4 decimals; 0 before the first lookup. Stale answers count as neither. */
export function cacheHitRatio(c: CacheSnapshot): number {
  const looked = c.hits + c.misses;
  return looked === 0 ? 0 : Math.round((c.hits / looked) * 10_000) / 10_000;
}

export function buildStats(input: StatsInput, now = Date.now()): Stats {
  const { config, state } = input;
  // JSON has no 64-bit integers; counters stay far below 2^53 in any real uptime.
  const g = (field: number): number => Number(state.globalCounter(field));
  const backends = config.loadBalancer.backendServers.map((b, i) => {
    const slot = slotAt(input.slots, i);
    return {
      id: b.id,
      protocol: b.protocol,
      host: b.host,
      port: b.port,
      ...(b.socket === undefined ? {} : { socket: b.socket }),
      weight: b.weight,
      group: b.group,
      healthy: state.backendGauge(slot, B_HEALTHY) === 1,
      enabled: state.backendGauge(slot, B_ENABLED) === 1,
      activeConnections: state.backendGauge(slot, B_ACTIVE),
      requests: Number(state.backendCounter(slot, BC_REQUESTS)),
      errors: Number(state.backendCounter(slot, BC_ERRORS)),
      failovers: Number(state.backendCounter(slot, BC_FAILOVERS)),
      latencyMs: summarizeMs(input.latency[slot]),
    };
  });
  const shards: ShardStats[] = [];
  for (let s = 0; s < input.workers; s++) {
    shards.push({
      index: s,
      alive: state.shardGauge(s, S_ALIVE) === 1,
      connections: state.shardGauge(s, S_CONNECTIONS),
      quicConnections: state.shardGauge(s, S_QUIC_CONNECTIONS),
      requests: Number(state.shardCounter(s, SC_REQUESTS)),
      webSockets: { open: Number(state.webSocketCounter(s, WS_OPEN)), opened: Number(state.webSocketCounter(s, WS_OPENED)) },
    });
  }
  return {
    uptimeSeconds: Math.max(0, Math.floor((now - input.startedAt) / 1000)),
    version: QUICLB_VERSION,
    workers: input.workers,
    config: structuredClone(input.configStatus ?? initialConfigStatus(input.startedAt)),
    protocols: { 'HTTP/1.1': g(G_REQ_HTTP1), 'HTTP/2': g(G_REQ_HTTP2), 'HTTP/3': g(G_REQ_HTTP3) },
    backends,
    shards,
    quic: {
      handshakes: g(G_QUIC_HANDSHAKES),
      migrations: g(G_QUIC_MIGRATIONS),
      natRebindings: g(G_QUIC_NAT_REBINDINGS),
      oldPathProbes: g(G_QUIC_OLD_PATH_PROBES),
      retries: g(G_QUIC_RETRIES),
      statelessResets: g(G_QUIC_STATELESS_RESETS),
      statelessResetsRateLimited: g(G_QUIC_RESETS_RATE_LIMITED),
      versionNegotiations: g(G_VERSION_NEGOTIATIONS),
      dropped: {
        unknownCid: g(G_DROP_SHORT_UNKNOWN_CID),
        badHeader: g(G_DROP_BAD_HEADER),
        initialTooShort: g(G_DROP_INITIAL_TOO_SHORT),
        queueFull: g(G_DROP_QUEUE_FULL),
        badToken: g(G_DROP_BAD_TOKEN),
        shardError: g(G_DROP_SHARD_ERROR),
      },
    },
    webSockets: {
      open: shards.reduce((n, s) => n + s.webSockets.open, 0),
      opened: shards.reduce((n, s) => n + s.webSockets.opened, 0),
    },
    shardRestarts: g(G_SHARD_RESTARTS),
    uncaughtErrors: g(G_UNCAUGHT_ERRORS),
    compression: Object.fromEntries(
      COMPRESSION_CODINGS.map((c) => [
        c,
        {
          responses: Number(state.compressionCounter(c, CC_RESPONSES)),
          bytesIn: Number(state.compressionCounter(c, CC_BYTES_IN)),
          bytesOut: Number(state.compressionCounter(c, CC_BYTES_OUT)),
        },
      ]),
    ) as Stats['compression'],
    rateLimit: rateLimitStats(input.rateLimit ?? NO_RATE_LIMIT),
    // Absent, not null, when the cache is off: the dashboard then says so.
    ...(input.cache === undefined ? {} : { cache: { ...input.cache, hitRatio: cacheHitRatio(input.cache) } }),
  };
}

function rateLimitStats(rl: RateLimitSnapshot): Stats['rateLimit'] {
  const { general, login, connections } = rl.limited;
  return { enabled: rl.enabled, limited: { general, login, connections }, clients: { ...rl.table } };
}
