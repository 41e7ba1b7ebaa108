// GET /metrics: Prometheus text exposition format 0.0.4
// (https://prometheus.io/docs/instrumenting/exposition_formats/). Every family gets # HELP and # TYPE;
// label values are escaped (\\, \", \n). Global counters are derived from GLOBAL_COUNTER_NAMES, so a
// counter added to state.ts shows up here without touching this file.
import type { Histogram } from 'hdr-histogram-js';
import {
  B_ACTIVE,
  B_ENABLED,
  B_HEALTHY,
  B_PASSIVE_FAILS,
  BC_ERRORS,
  BC_FAILOVERS,
  BC_HEALTH_TRANSITIONS,
  BC_REQUESTS,
  CC_BYTES_IN,
  CC_BYTES_OUT,
  CC_RESPONSES,
  COMPRESSION_CODINGS,
  G_REQ_HTTP1,
  G_REQ_HTTP2,
  G_REQ_HTTP3,
  G_SHARD_RESTARTS,
  GLOBAL_COUNTER_NAMES,
  S_ALIVE,
  S_CONNECTIONS,
  S_QUIC_CONNECTIONS,
  SC_CONNECTIONS_TOTAL,
  WS_OPEN,
  WS_OPENED,
  SC_REQUESTS,
  slotAt,
} from '../shared/state.ts';
import { NO_RATE_LIMIT, type StatsInput } from './stats.ts';
import { LIMIT_REASONS } from '../ratelimit/counters.ts';
import { CACHE_COUNTERS, type CacheCounterName } from '../shared/cache-state.ts';
import { QUICLB_VERSION } from './version.ts';

export const METRICS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

type Labels = Record<string, string>;
type Sample = { labels?: Labels; value: number | bigint; suffix?: string };

export function escapeLabelValue(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

function escapeHelp(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
}

function formatValue(v: number | bigint): string {
  if (typeof v === 'bigint') return v.toString();
  if (Number.isNaN(v)) return 'NaN';
  if (v === Infinity) return '+Inf';
  if (v === -Infinity) return '-Inf';
  return String(v);
}

function formatLabels(labels: Labels | undefined): string {
  if (!labels) return '';
  const parts = Object.entries(labels).map(([k, v]) => `${k}="${escapeLabelValue(v)}"`);
  return parts.length ? `{${parts.join(',')}}` : '';
}

class Exposition {
  private readonly lines: string[] = [];

  family(name: string, type: 'counter' | 'gauge' | 'summary', help: string, samples: Sample[]): void {
    this.lines.push(`# HELP ${name} ${escapeHelp(help)}`, `# TYPE ${name} ${type}`);
    for (const s of samples) this.lines.push(`${name}${s.suffix ?? ''}${formatLabels(s.labels)} ${formatValue(s.value)}`);
  }

  text(): string {
    return this.lines.join('\n') + '\n';
  }
}

const QUANTILES = [0.5, 0.9, 0.99];

/** # HELP of quiclb_cache_<name>_total, one per counter of src/shared/cache-state.ts. */
const CACHE_HELP: Record<CacheCounterName, string> = {
  hits: 'Requests answered from the response cache with a fresh entry (304s to clients included).',
  misses: 'Cache lookups that found nothing usable and went to a backend.',
  stale: 'Requests answered with a stale entry (stale-while-revalidate, stale-if-error).',
  revalidated: 'Stale entries a backend confirmed with 304, then served.',
  stored: 'Responses written to the cache.',
  evicted: 'Entries removed to stay within cache.maxSize (least recently used first).',
  bypass: 'Requests the cache does not handle (not GET or HEAD, Range, a request body).',
  coalesced: 'Requests that waited for another request\'s backend fetch of the same URL and were served from it.',
  uncacheable: 'Backend responses the caching rules refused to store (private, no-store, Set-Cookie, too large...).',
  purged: 'Entries removed by a purge.',
  lockTimeouts: 'Requests that waited cache.lockTimeout for another fetch of the same URL, then fetched themselves.',
  errors: 'Cache store failures (the request was still served).',
};

/** lockTimeouts -> lock_timeouts */
const snakeCase = (name: string): string => name.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);

function latencySamples(id: string, h: Histogram | undefined): Sample[] {
  const empty = !h || h.totalCount === 0;
  const samples: Sample[] = QUANTILES.map((q) => ({
    labels: { backend: id, quantile: String(q) },
    // Prometheus convention: a summary with no observations reports NaN quantiles.
    value: empty ? NaN : h.getValueAtPercentile(q * 100) / 1e6,
  }));
  // HdrHistogram keeps no exact sum; mean x count is within its 3-significant-digit precision.
  samples.push({ labels: { backend: id }, suffix: '_sum', value: empty ? 0 : (h.mean * h.totalCount) / 1e6 });
  samples.push({ labels: { backend: id }, suffix: '_count', value: empty ? 0 : h.totalCount });
  return samples;
}

export function renderMetrics(input: StatsInput): string {
  const { config, state } = input;
  const out = new Exposition();
  const backends = config.loadBalancer.backendServers;
  // f gets the backend's SharedState slot.
  const perBackend = (f: (slot: number) => number | bigint): Sample[] => backends.map((b, i) => ({ labels: { backend: b.id }, value: f(slotAt(input.slots, i)) }));

  out.family('quiclb_up', 'gauge', 'Always 1 while quiclb answers.', [{ value: 1 }]);
  out.family('quiclb_info', 'gauge', 'Build information.', [{ labels: { version: QUICLB_VERSION }, value: 1 }]);
  out.family('quiclb_uptime_seconds', 'gauge', 'Seconds since quiclb started.', [{ value: Math.max(0, (Date.now() - input.startedAt) / 1000) }]);
  out.family('quiclb_requests_total', 'counter', 'Client requests by protocol.', [
    { labels: { protocol: 'HTTP/1.1' }, value: state.globalCounter(G_REQ_HTTP1) },
    { labels: { protocol: 'HTTP/2' }, value: state.globalCounter(G_REQ_HTTP2) },
    { labels: { protocol: 'HTTP/3' }, value: state.globalCounter(G_REQ_HTTP3) },
  ]);

  out.family('quiclb_backend_requests_total', 'counter', 'Requests sent to each backend.', perBackend((i) => state.backendCounter(i, BC_REQUESTS)));
  out.family('quiclb_backend_errors_total', 'counter', 'Backend connection errors, timeouts and 5xx responses.', perBackend((i) => state.backendCounter(i, BC_ERRORS)));
  out.family('quiclb_backend_failovers_total', 'counter', 'Requests retried away from each backend.', perBackend((i) => state.backendCounter(i, BC_FAILOVERS)));
  out.family('quiclb_backend_health_transitions_total', 'counter', 'Up/down transitions of each backend.', perBackend((i) => state.backendCounter(i, BC_HEALTH_TRANSITIONS)));
  out.family('quiclb_backend_up', 'gauge', '1 when the backend passes its health checks, 0 when it is down.', perBackend((i) => state.backendGauge(i, B_HEALTHY)));
  out.family('quiclb_backend_enabled', 'gauge', '1 when the backend is in rotation, 0 when an operator drained it.', perBackend((i) => state.backendGauge(i, B_ENABLED)));
  out.family('quiclb_backend_active_connections', 'gauge', 'Requests in flight to each backend.', perBackend((i) => state.backendGauge(i, B_ACTIVE)));
  out.family('quiclb_backend_passive_failures', 'gauge', 'Current streak of failed requests to each backend.', perBackend((i) => state.backendGauge(i, B_PASSIVE_FAILS)));
  out.family(
    'quiclb_backend_latency_seconds',
    'summary',
    'Backend response time, first request byte to last response byte.',
    backends.flatMap((b, i) => latencySamples(b.id, input.latency[slotAt(input.slots, i)])),
  );
  const cs = input.configStatus;
  out.family('quiclb_config_generation', 'gauge', 'Configuration generation: 1 at start, +1 per applied reload.', [{ value: cs?.generation ?? 1 }]);
  out.family('quiclb_config_loaded_timestamp_seconds', 'gauge', 'When the running configuration was loaded (Unix time).', [{ value: (cs?.loadedAt ?? input.startedAt) / 1000 }]);
  out.family('quiclb_config_reloads_failed_total', 'counter', 'Configuration reloads refused (the running configuration stayed).', [{ value: cs?.failedReloads ?? 0 }]);

  const shards = Array.from({ length: input.workers }, (_, s) => s);
  const perShard = (f: (s: number) => number | bigint): Sample[] => shards.map((s) => ({ labels: { shard: String(s) }, value: f(s) }));
  out.family('quiclb_shard_up', 'gauge', '1 while the shard thread is alive.', perShard((s) => state.shardGauge(s, S_ALIVE)));
  out.family('quiclb_shard_connections', 'gauge', 'Open client connections (TCP and QUIC) per shard.', perShard((s) => state.shardGauge(s, S_CONNECTIONS)));
  out.family('quiclb_shard_quic_connections', 'gauge', 'Open QUIC connections per shard.', perShard((s) => state.shardGauge(s, S_QUIC_CONNECTIONS)));
  out.family('quiclb_shard_requests_total', 'counter', 'Requests served per shard.', perShard((s) => state.shardCounter(s, SC_REQUESTS)));
  out.family('quiclb_shard_connections_total', 'counter', 'Client connections accepted per shard.', perShard((s) => state.shardCounter(s, SC_CONNECTIONS_TOTAL)));
  out.family('quiclb_websocket_tunnels', 'gauge', 'WebSocket tunnels open per shard.', perShard((s) => state.webSocketCounter(s, WS_OPEN)));
  out.family('quiclb_websocket_tunnels_opened_total', 'counter', 'WebSocket tunnels opened per shard.', perShard((s) => state.webSocketCounter(s, WS_OPENED)));

  // The remaining global counters, by their state.ts names: quic_dropped_* become one family with a
  // reason label; the protocol request counters were exported above.
  const dropped: Sample[] = [];
  const skip = new Set([G_REQ_HTTP1, G_REQ_HTTP2, G_REQ_HTTP3, G_SHARD_RESTARTS]);
  for (const [field, name] of Object.entries(GLOBAL_COUNTER_NAMES)) {
    const f = Number(field);
    if (skip.has(f)) continue;
    const value = state.globalCounter(f);
    if (name.startsWith('quic_dropped_')) {
      dropped.push({ labels: { reason: name.slice('quic_dropped_'.length) }, value });
      continue;
    }
    out.family(`quiclb_${name}_total`, 'counter', `quiclb ${name.replace(/_/g, ' ')} since start.`, [{ value }]);
  }
  out.family('quiclb_quic_dropped_packets_total', 'counter', 'QUIC datagrams dropped, by reason.', dropped);
  out.family('quiclb_shard_restarts_total', 'counter', 'Shard threads restarted after a crash.', [{ value: state.globalCounter(G_SHARD_RESTARTS) }]);

  const perCoding = (field: number): Sample[] => COMPRESSION_CODINGS.map((c) => ({ labels: { encoding: c }, value: state.compressionCounter(c, field) }));
  out.family('quiclb_compression_responses_total', 'counter', 'Responses compressed by quiclb, by content coding.', perCoding(CC_RESPONSES));
  out.family('quiclb_compression_bytes_in_total', 'counter', 'Response body bytes before compression, by content coding.', perCoding(CC_BYTES_IN));
  out.family('quiclb_compression_bytes_out_total', 'counter', 'Response body bytes after compression, by content coding.', perCoding(CC_BYTES_OUT));
  const rl = input.rateLimit ?? NO_RATE_LIMIT;
  out.family('quiclb_rate_limit_enabled', 'gauge', '1 when rateLimit is on.', [{ value: rl.enabled ? 1 : 0 }]);
  out.family(
    'quiclb_rate_limited_total',
    'counter',
    'Refused by the rate limiter, by reason: general and login (429 answers), connections (closed at maxConnectionsPerClient).',
    LIMIT_REASONS.map((reason) => ({ labels: { reason }, value: rl.limited[reason] })),
  );
  out.family('quiclb_rate_limit_clients_recycled_total', 'counter', 'Tracked clients forgotten to make room for others (rateLimit.maxClients).', [{ value: rl.table.evictions }]);
  out.family('quiclb_rate_limit_untracked_total', 'counter', 'Requests and connections let through untracked because the client table had no room.', [{ value: rl.table.overflows }]);
  const cache = input.cache;
  out.family('quiclb_cache_enabled', 'gauge', '1 when the response cache is on (cache.enabled or moodle.enableCaching).', [{ value: cache === undefined ? 0 : 1 }]);
  if (cache !== undefined) {
    for (const name of CACHE_COUNTERS) out.family(`quiclb_cache_${snakeCase(name)}_total`, 'counter', CACHE_HELP[name], [{ value: cache[name] }]);
    out.family('quiclb_cache_bytes', 'gauge', 'Bytes held by the response cache (bodies, headers and per-entry overhead), as of its last write.', [{ value: cache.bytes }]);
    out.family('quiclb_cache_entries', 'gauge', 'Responses stored in the cache, as of its last write.', [{ value: cache.entries }]);
  }
  return out.text();
}
