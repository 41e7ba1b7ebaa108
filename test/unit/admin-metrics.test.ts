// /stats, /metrics and /health built from a populated SharedState; the Prometheus text is parsed back
// line by line with an independent parser.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Config } from '../../src/config/types.ts';
import { buildHealthReport } from '../../src/admin/health-report.ts';
import { LatencyRecorder } from '../../src/admin/latency.ts';
import { escapeLabelValue, renderMetrics } from '../../src/admin/metrics.ts';
import { buildStats, type StatsInput } from '../../src/admin/stats.ts';
import { validateConfig } from '../../src/config/load.ts';
import { RateLimiter } from '../../src/ratelimit/limiter.ts';
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
  G_DROP_BAD_TOKEN,
  G_DROP_QUEUE_FULL,
  G_QUIC_HANDSHAKES,
  G_QUIC_MIGRATIONS,
  G_REQ_HTTP1,
  G_REQ_HTTP2,
  G_REQ_HTTP3,
  G_SHARD_RESTARTS,
  GLOBAL_COUNTER_NAMES,
  S_ALIVE,
  S_CONNECTIONS,
  S_QUIC_CONNECTIONS,
  SC_REQUESTS,
  WS_OPEN,
  WS_OPENED,
  SharedState,
} from '../../src/shared/state.ts';

const WEIRD_ID = 'we"ird\\id\nx';

function populated(): { input: StatsInput; config: Config; state: SharedState } {
  const config = {
    loadBalancer: {
      backendServers: [
        { id: 'web1', protocol: 'http', host: '10.0.0.1', port: 8080, weight: 1, healthy: true, maxConnections: 0, group: 'default' },
        { id: WEIRD_ID, protocol: 'http', host: '10.0.0.2', port: 8081, weight: 1, healthy: true, maxConnections: 0, group: 'default' },
      ],
    },
  } as unknown as Config;
  const state = new SharedState();
  state.initBackend(0, true);
  state.initBackend(1, true);
  state.setBackendGauge(1, B_HEALTHY, 0);
  state.addBackendGauge(0, B_ACTIVE, 3);
  state.addBackendCounter(0, BC_REQUESTS, 120n);
  state.addBackendCounter(0, BC_ERRORS, 4n);
  state.addBackendCounter(0, BC_FAILOVERS, 2n);
  state.addBackendCounter(1, BC_REQUESTS, 7n);
  state.addGlobal(G_REQ_HTTP1, 10n);
  state.addGlobal(G_REQ_HTTP2, 20n);
  state.addGlobal(G_REQ_HTTP3, 97n);
  state.addGlobal(G_QUIC_HANDSHAKES, 5n);
  state.addGlobal(G_QUIC_MIGRATIONS, 2n);
  state.addGlobal(G_DROP_QUEUE_FULL, 9n);
  state.addGlobal(G_DROP_BAD_TOKEN, 1n);
  state.addGlobal(G_SHARD_RESTARTS, 1n);
  state.setShardGauge(0, S_ALIVE, 1);
  state.setShardGauge(1, S_ALIVE, 0);
  state.addShardGauge(0, S_CONNECTIONS, 6);
  state.addShardGauge(0, S_QUIC_CONNECTIONS, 4);
  state.addShardCounter(1, SC_REQUESTS, 33n);
  state.addWebSocketCounter(0, WS_OPEN, 2n);
  state.addWebSocketCounter(0, WS_OPENED, 7n);
  state.addWebSocketCounter(1, WS_OPENED, 1n);
  state.addCompressionCounter('br', CC_RESPONSES, 3n);
  state.addCompressionCounter('br', CC_BYTES_IN, 30000n);
  state.addCompressionCounter('br', CC_BYTES_OUT, 6000n);
  state.addCompressionCounter('gzip', CC_RESPONSES, 1n);
  const rec = new LatencyRecorder();
  for (let ms = 1; ms <= 100; ms++) rec.record(0, ms);
  const input: StatsInput = { config, state, startedAt: Date.now() - 5500, workers: 2, latency: LatencyRecorder.merge([rec.snapshot()], 2) };
  return { input, config, state };
}

test('stats JSON has the documented shape and values', () => {
  const { input } = populated();
  const s = buildStats(input);
  assert.equal(s.uptimeSeconds, 5);
  assert.match(s.version, /^\d+\.\d+\.\d+/);
  assert.equal(s.workers, 2);
  assert.deepEqual(s.protocols, { 'HTTP/1.1': 10, 'HTTP/2': 20, 'HTTP/3': 97 });
  assert.equal(s.backends.length, 2);
  const b0 = s.backends[0];
  assert.deepEqual(
    { ...b0, latencyMs: undefined },
    { id: 'web1', protocol: 'http', host: '10.0.0.1', port: 8080, weight: 1, group: 'default', healthy: true, enabled: true, activeConnections: 3, requests: 120, errors: 4, failovers: 2, latencyMs: undefined },
  );
  assert.equal(b0.latencyMs.count, 100);
  assert.ok(Math.abs(b0.latencyMs.p50 - 50) <= 0.1);
  assert.ok(b0.latencyMs.p90 <= b0.latencyMs.p99 && b0.latencyMs.p99 <= b0.latencyMs.p999 && b0.latencyMs.p999 <= b0.latencyMs.max);
  assert.equal(s.backends[1].healthy, false);
  assert.equal(s.backends[1].latencyMs.count, 0);
  assert.deepEqual(s.shards, [
    { index: 0, alive: true, connections: 6, quicConnections: 4, requests: 0, webSockets: { open: 2, opened: 7 } },
    { index: 1, alive: false, connections: 0, quicConnections: 0, requests: 33, webSockets: { open: 0, opened: 1 } },
  ]);
  assert.deepEqual(s.webSockets, { open: 2, opened: 8 });
  assert.deepEqual(s.quic, {
    handshakes: 5,
    migrations: 2,
    natRebindings: 0,
    oldPathProbes: 0,
    retries: 0,
    statelessResets: 0,
    statelessResetsRateLimited: 0,
    versionNegotiations: 0,
    dropped: { unknownCid: 0, badHeader: 0, initialTooShort: 0, queueFull: 9, badToken: 1, shardError: 0 },
  });
  assert.equal(s.shardRestarts, 1);
  assert.deepEqual(s.compression, {
    br: { responses: 3, bytesIn: 30000, bytesOut: 6000 },
    zstd: { responses: 0, bytesIn: 0, bytesOut: 0 },
    gzip: { responses: 1, bytesIn: 0, bytesOut: 0 },
  });
  // Survives JSON (no bigint left inside).
  assert.deepEqual(JSON.parse(JSON.stringify(s)), s);
});

interface ParsedSample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** Independent parser for text format 0.0.4 (label values: \\, \", \n escapes). */
function parseExposition(text: string): { types: Map<string, string>; helps: Set<string>; samples: ParsedSample[] } {
  assert.ok(text.endsWith('\n'), 'ends with a newline');
  const types = new Map<string, string>();
  const helps = new Set<string>();
  const samples: ParsedSample[] = [];
  const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
  for (const line of text.slice(0, -1).split('\n')) {
    if (line.startsWith('# HELP ')) {
      const name = line.slice(7).split(' ')[0];
      assert.match(name, NAME);
      assert.ok(!helps.has(name), `one HELP for ${name}`);
      helps.add(name);
      continue;
    }
    if (line.startsWith('# TYPE ')) {
      const [name, type] = line.slice(7).split(' ');
      assert.match(name, NAME);
      assert.ok(['counter', 'gauge', 'summary', 'histogram', 'untyped'].includes(type), type);
      assert.ok(!types.has(name), `one TYPE for ${name}`);
      types.set(name, type);
      continue;
    }
    assert.ok(!line.startsWith('#') && line.length > 0, `unexpected line ${JSON.stringify(line)}`);
    let i = 0;
    while (i < line.length && line[i] !== '{' && line[i] !== ' ') i++;
    const name = line.slice(0, i);
    assert.match(name, NAME);
    const labels: Record<string, string> = {};
    if (line[i] === '{') {
      i++;
      while (line[i] !== '}') {
        const eq = line.indexOf('=', i);
        const key = line.slice(i, eq);
        assert.match(key, /^[a-zA-Z_][a-zA-Z0-9_]*$/);
        assert.equal(line[eq + 1], '"');
        let j = eq + 2;
        let value = '';
        for (;;) {
          const c = line[j];
          assert.ok(c !== undefined, 'unterminated label value');
          if (c === '"') break;
          if (c === '\\') {
            const n = line[j + 1];
            assert.ok(n === '\\' || n === '"' || n === 'n', `bad escape \\${n}`);
            value += n === 'n' ? '\n' : n;
            j += 2;
          } else {
            value += c;
            j++;
          }
        }
        labels[key] = value;
        i = j + 1;
        if (line[i] === ',') i++;
      }
      i++;
    }
    assert.equal(line[i], ' ');
    const raw = line.slice(i + 1);
    const value = raw === 'NaN' ? NaN : raw === '+Inf' ? Infinity : Number(raw);
    assert.ok(raw === 'NaN' || !Number.isNaN(value), `value ${raw}`);
    const family = types.has(name) ? name : name.replace(/_(sum|count)$/, '');
    assert.ok(types.has(family), `sample ${name} follows a TYPE line for its family`);
    assert.ok(helps.has(family), `sample ${name} has HELP`);
    samples.push({ name, labels, value });
  }
  return { types, helps, samples };
}

test('Prometheus exposition parses back with the expected families and values', () => {
  const { input } = populated();
  const { types, samples } = parseExposition(renderMetrics(input));
  const find = (name: string, labels: Record<string, string> = {}): ParsedSample | undefined =>
    samples.find((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
  assert.equal(find('quiclb_up')?.value, 1);
  assert.equal(types.get('quiclb_requests_total'), 'counter');
  assert.equal(find('quiclb_requests_total', { protocol: 'HTTP/3' })?.value, 97);
  assert.equal(find('quiclb_requests_total', { protocol: 'HTTP/1.1' })?.value, 10);
  assert.equal(find('quiclb_backend_requests_total', { backend: 'web1' })?.value, 120);
  assert.equal(find('quiclb_backend_errors_total', { backend: 'web1' })?.value, 4);
  assert.equal(find('quiclb_backend_up', { backend: 'web1' })?.value, 1);
  assert.equal(types.get('quiclb_backend_up'), 'gauge');
  assert.equal(find('quiclb_backend_active_connections', { backend: 'web1' })?.value, 3);
  // The label value with ", \ and a newline survives the round trip.
  assert.equal(find('quiclb_backend_up', { backend: WEIRD_ID })?.value, 0);
  assert.equal(find('quiclb_backend_requests_total', { backend: WEIRD_ID })?.value, 7);
  // Latency summary in seconds.
  assert.equal(types.get('quiclb_backend_latency_seconds'), 'summary');
  const p50 = find('quiclb_backend_latency_seconds', { backend: 'web1', quantile: '0.5' })?.value ?? NaN;
  assert.ok(Math.abs(p50 - 0.05) < 0.0001, `p50 ${p50}`);
  assert.equal(find('quiclb_backend_latency_seconds_count', { backend: 'web1' })?.value, 100);
  const sum = find('quiclb_backend_latency_seconds_sum', { backend: 'web1' })?.value ?? NaN;
  assert.ok(Math.abs(sum - 5.05) < 0.01, `sum ${sum}`);
  assert.ok(Number.isNaN(find('quiclb_backend_latency_seconds', { backend: WEIRD_ID, quantile: '0.99' })?.value));
  assert.equal(find('quiclb_backend_latency_seconds_count', { backend: WEIRD_ID })?.value, 0);
  // Shards.
  assert.equal(find('quiclb_shard_connections', { shard: '0' })?.value, 6);
  assert.equal(find('quiclb_shard_connections', { shard: '1' })?.value, 0);
  assert.equal(find('quiclb_websocket_tunnels', { shard: '0' })?.value, 2);
  assert.equal(find('quiclb_websocket_tunnels_opened_total', { shard: '1' })?.value, 1);
  // QUIC counters, one family per G_ counter, drops by reason.
  assert.equal(find('quiclb_quic_handshakes_total')?.value, 5);
  assert.equal(find('quiclb_quic_migrations_total')?.value, 2);
  assert.equal(types.get('quiclb_quic_retries_total'), 'counter');
  assert.equal(find('quiclb_quic_dropped_packets_total', { reason: 'queue_full' })?.value, 9);
  assert.equal(find('quiclb_quic_dropped_packets_total', { reason: 'bad_token' })?.value, 1);
  const dropReasons = Object.values(GLOBAL_COUNTER_NAMES).filter((n) => n.startsWith('quic_dropped_')).length;
  assert.equal(samples.filter((s) => s.name === 'quiclb_quic_dropped_packets_total').length, dropReasons);
  assert.equal(find('quiclb_shard_restarts_total')?.value, 1);
  // Compression, per content coding.
  assert.equal(find('quiclb_compression_responses_total', { encoding: 'br' })?.value, 3);
  assert.equal(find('quiclb_compression_bytes_in_total', { encoding: 'br' })?.value, 30000);
  assert.equal(find('quiclb_compression_bytes_out_total', { encoding: 'br' })?.value, 6000);
  assert.equal(find('quiclb_compression_responses_total', { encoding: 'gzip' })?.value, 1);
  assert.equal(find('quiclb_compression_responses_total', { encoding: 'zstd' })?.value, 0);
  for (const [name, type] of types) if (type === 'counter') assert.match(name, /_total$/, `counter ${name} ends in _total`);
});

test('rate-limit refusals by reason in /stats and /metrics; zeros without a limiter', () => {
  const { input } = populated();
  assert.deepEqual(buildStats(input).rateLimit, {
    enabled: false,
    limited: { general: 0, login: 0, connections: 0 },
    clients: { capacity: 0, evictions: 0, overflows: 0, stolenLocks: 0 },
  });
  assert.match(renderMetrics(input), /^quiclb_rate_limited_total\{reason="login"\} 0$/m);
  const rl = RateLimiter.create(validateConfig({ rateLimit: { enabled: true, requestsPerSecond: 0.01, burst: 1, login: { burst: 1 }, maxConnectionsPerClient: 1, maxClients: 1024 } }));
  for (let i = 0; i < 3; i++) rl.checkRequest('203.0.113.7', 'GET', '/'); // 2 refused: general
  for (let i = 0; i < 2; i++) rl.checkRequest('203.0.113.8', 'POST', '/login/index.php'); // 1 refused: login
  rl.acquireConnection('203.0.113.9');
  rl.acquireConnection('203.0.113.9'); // refused: connections
  const withLimits: StatsInput = { ...input, rateLimit: { enabled: rl.enabled, ...rl.stats() } };
  assert.deepEqual(buildStats(withLimits).rateLimit, {
    enabled: true,
    limited: { general: 2, login: 1, connections: 1 },
    clients: { capacity: 1024, evictions: 0, overflows: 0, stolenLocks: 0 },
  });
  const { types, samples } = parseExposition(renderMetrics(withLimits));
  const value = (name: string, labels: Record<string, string> = {}) =>
    samples.find((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))?.value;
  assert.equal(types.get('quiclb_rate_limited_total'), 'counter');
  assert.equal(value('quiclb_rate_limited_total', { reason: 'general' }), 2);
  assert.equal(value('quiclb_rate_limited_total', { reason: 'login' }), 1);
  assert.equal(value('quiclb_rate_limited_total', { reason: 'connections' }), 1);
  assert.equal(value('quiclb_rate_limit_enabled'), 1);
  assert.equal(value('quiclb_rate_limit_clients_recycled_total'), 0);
  assert.equal(value('quiclb_rate_limit_untracked_total'), 0);
});

test('label escaping', () => {
  assert.equal(escapeLabelValue('a"b\\c\nd'), 'a\\"b\\\\c\\nd');
});

test('health report: ok, degraded, drained is not degraded, down', () => {
  const { config, state } = populated();
  let r = buildHealthReport(config, state);
  assert.equal(r.statusCode, 200);
  assert.equal(r.body.status, 'degraded');
  assert.equal(r.body.healthyBackends, 1);
  assert.equal(r.body.totalBackends, 2);
  assert.deepEqual(r.body.backends[1], { id: WEIRD_ID, healthy: false, enabled: true });
  state.setBackendGauge(1, B_ENABLED, 0);
  r = buildHealthReport(config, state);
  assert.equal(r.body.status, 'ok');
  state.setBackendGauge(0, B_HEALTHY, 0);
  r = buildHealthReport(config, state);
  assert.equal(r.statusCode, 503);
  assert.equal(r.body.status, 'down');
  assert.equal(r.body.healthyBackends, 0);
});
