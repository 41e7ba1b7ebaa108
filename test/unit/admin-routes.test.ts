// handleAdmin through the FrontRequest/FrontResponse contract, with an in-memory response that records
// what a frontend would put on the wire.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Config } from '../../src/config/types.ts';
import type { BodySink, FrontRequest, FrontResponse, HeaderList } from '../../src/shared/http-types.ts';
import { handleAdmin, isAdminPath, type AdminContext } from '../../src/admin/routes.ts';
import { LatencyRecorder } from '../../src/admin/latency.ts';
import { METRICS_CONTENT_TYPE } from '../../src/admin/metrics.ts';
import { B_HEALTHY, SharedState } from '../../src/shared/state.ts';

interface Recorded {
  status: number;
  headers: Map<string, string>;
  body: string;
}

function exchange(ctx: AdminContext, init: Partial<FrontRequest> & { path: string }): { handled: boolean; done: Promise<Recorded> } {
  const req: FrontRequest = {
    protocol: 'HTTP/2',
    method: 'GET',
    scheme: 'https',
    authority: 'lb.example.test',
    headers: [],
    body: null,
    remoteAddress: '127.0.0.1',
    remotePort: 50000,
    localPort: 443,
    connectionKey: 'c1',
    shard: 3,
    ...init,
  };
  let resolve!: (r: Recorded) => void;
  const done = new Promise<Recorded>((r) => (resolve = r));
  let sent = false;
  const res: FrontResponse = {
    respond(status: number, headers: HeaderList): BodySink {
      assert.equal(sent, false, 'respond() called once');
      sent = true;
      const chunks: Uint8Array[] = [];
      return {
        write(chunk) {
          chunks.push(chunk);
          return true;
        },
        end(chunk) {
          if (chunk) chunks.push(chunk);
          resolve({ status, headers: new Map(headers), body: Buffer.concat(chunks).toString('utf8') });
        },
        onDrain: (cb) => process.nextTick(cb),
      };
    },
    inform() {},
    abort(reason?: Error) {
      throw reason ?? new Error('aborted');
    },
    get headersSent() {
      return sent;
    },
    get finished() {
      return sent;
    },
    onClientAbort() {},
  };
  return { handled: handleAdmin(req, res, ctx) !== false, done };
}

function context(admin: Partial<Config['admin']> = {}, collectLatency?: () => Promise<string[][]>): AdminContext {
  const config = {
    loadBalancer: { backendServers: [{ id: 'web1', host: '127.0.0.1', port: 8080, weight: 1, healthy: true, maxConnections: 0, group: 'default' }] },
    admin: { allowFrom: ['127.0.0.0/8', '::1/128'], port: 0, ...admin },
  } as unknown as Config;
  const state = new SharedState();
  state.initBackend(0, true);
  return { config, state, startedAt: Date.now(), workers: 1, collectLatency: collectLatency ?? (async () => []) };
}

test('non-admin paths are left to the proxy', () => {
  const ctx = context();
  for (const path of ['/', '/healthz', '/health/x', '/admin/cli/healthcheck.php', '/statsx']) {
    assert.equal(isAdminPath(path), false, path);
    assert.equal(exchange(ctx, { path }).handled, false, path);
  }
  assert.equal(isAdminPath('/health?full=1'), true);
});

test('/api/test answers anyone with the protocol only (no shard number, no server time)', async () => {
  const { handled, done } = exchange(context(), { path: '/api/test', remoteAddress: '203.0.113.5', protocol: 'HTTP/3' });
  assert.equal(handled, true);
  const r = await done;
  assert.equal(r.status, 200);
  assert.equal(r.headers.get('content-type'), 'application/json');
  assert.equal(r.headers.get('cache-control'), 'no-store');
  const body = JSON.parse(r.body) as Record<string, unknown>;
  assert.deepEqual(body, { ok: true, protocol: 'HTTP/3' });
  assert.equal(Number(r.headers.get('content-length')), Buffer.byteLength(r.body));
});

test('/health: 200 while a backend is up, 503 when none, 403 from outside allowFrom', async () => {
  const ctx = context();
  let r = await exchange(ctx, { path: '/health?verbose=1', remoteAddress: '::ffff:127.0.0.1' }).done;
  assert.equal(r.status, 200);
  assert.equal(JSON.parse(r.body).status, 'ok');
  ctx.state.setBackendGauge(0, B_HEALTHY, 0);
  r = await exchange(ctx, { path: '/health' }).done;
  assert.equal(r.status, 503);
  assert.equal(JSON.parse(r.body).status, 'down');
  r = await exchange(ctx, { path: '/health', remoteAddress: '198.51.100.7' }).done;
  assert.equal(r.status, 403);
  assert.match(JSON.parse(r.body).error, /allowFrom/);
});

test('token protection: 401 with WWW-Authenticate, then 200 with the right bearer token', async () => {
  const ctx = context({ token: 'tok-123' });
  let r = await exchange(ctx, { path: '/metrics' }).done;
  assert.equal(r.status, 401);
  assert.match(r.headers.get('www-authenticate') ?? '', /^Bearer/);
  r = await exchange(ctx, { path: '/metrics', headers: [['authorization', 'Bearer nope']] }).done;
  assert.equal(r.status, 401);
  r = await exchange(ctx, { path: '/metrics', headers: [['authorization', 'Bearer tok-123']] }).done;
  assert.equal(r.status, 200);
  assert.equal(r.headers.get('content-type'), METRICS_CONTENT_TYPE);
  assert.match(r.body, /^quiclb_up 1$/m);
});

test('/stats merges the latency the shards report; a failing collection still answers', async () => {
  const a = new LatencyRecorder();
  const b = new LatencyRecorder();
  a.record(0, 10);
  b.record(0, 30);
  b.record(0, 50);
  let r = await exchange(context({}, async () => [a.snapshot(), b.snapshot()]), { path: '/stats' }).done;
  assert.equal(r.status, 200);
  let stats = JSON.parse(r.body) as { backends: Array<{ latencyMs: { count: number; max: number } }> };
  assert.equal(stats.backends[0].latencyMs.count, 3);
  assert.ok(Math.abs(stats.backends[0].latencyMs.max - 50) < 0.1);
  r = await exchange(context({}, async () => Promise.reject(new Error('shard gone'))), { path: '/stats' }).done;
  assert.equal(r.status, 200);
  stats = JSON.parse(r.body) as typeof stats;
  assert.equal(stats.backends[0].latencyMs.count, 0);
});

test('HEAD gets headers without a body; other methods get 405', async () => {
  let r = await exchange(context(), { path: '/health', method: 'HEAD' }).done;
  assert.equal(r.status, 200);
  assert.equal(r.body, '');
  assert.ok(Number(r.headers.get('content-length')) > 0);
  r = await exchange(context(), { path: '/stats', method: 'POST' }).done;
  assert.equal(r.status, 405);
  assert.equal(r.headers.get('allow'), 'GET, HEAD');
});
