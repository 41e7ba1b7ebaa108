// The response cache in /stats, /metrics and POST /cache/purge, against a real store (src/cache on a
// temporary SQLite file) and the admin routes as a shard runs them.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { validateConfig } from '../../src/config/load.ts';
import { handleAdmin, isAdminPath, type AdminContext } from '../../src/admin/routes.ts';
import { buildStats, cacheHitRatio } from '../../src/admin/stats.ts';
import { renderMetrics } from '../../src/admin/metrics.ts';
import { SharedState } from '../../src/shared/state.ts';
import { get, openTestCache, storeThrough } from '../support/cache-fixtures.ts';
import { memoryExchange } from '../support/memory-exchange.ts';

const CSS: Array<[string, string]> = [['content-type', 'text/css'], ['cache-control', 'public, max-age=300']];

function context(admin: Record<string, unknown> = {}, withCache = true): AdminContext & { cache?: ReturnType<typeof openTestCache>['cache'] } {
  const config = validateConfig({ admin });
  const state = new SharedState();
  return { config, state, startedAt: Date.now(), workers: 1, collectLatency: async () => [], cache: withCache ? openTestCache().cache : undefined };
}

async function call(ctx: AdminContext, init: Parameters<typeof memoryExchange>[0]) {
  const m = memoryExchange(init);
  const handled = handleAdmin(m.req, m.res, ctx);
  assert.notEqual(handled, false);
  await handled;
  const r = await m.done;
  return { status: r.status, headers: new Map(r.headers), body: JSON.parse(r.body.toString()) as any };
}

test('stats: cache counters with hitRatio only when the cache is on; metrics: quiclb_cache_*', async () => {
  const ctx = context();
  await storeThrough(ctx.cache!, get('/theme/a.css'), CSS, 'a');
  await ctx.cache!.lookup(get('/theme/a.css'));
  await ctx.cache!.lookup(get('/theme/a.css'));
  const snapshot = ctx.cache!.stats();
  const s = buildStats({ config: ctx.config, state: ctx.state, startedAt: ctx.startedAt, workers: 1, latency: [], cache: snapshot });
  assert.deepEqual(s.cache, { ...snapshot, hitRatio: 0.6667 });
  assert.equal(s.cache!.hits, 2);
  assert.equal(s.cache!.misses, 1);
  assert.equal(s.cache!.entries, 1);
  assert.equal('cache' in buildStats({ config: ctx.config, state: ctx.state, startedAt: 0, workers: 1, latency: [] }), false);
  assert.equal(cacheHitRatio({ ...snapshot, hits: 0, misses: 0 }), 0);

  const text = renderMetrics({ config: ctx.config, state: ctx.state, startedAt: 0, workers: 1, latency: [], cache: snapshot });
  assert.match(text, /^# TYPE quiclb_cache_hits_total counter\nquiclb_cache_hits_total 2$/m);
  assert.match(text, /^quiclb_cache_misses_total 1$/m);
  assert.match(text, /^quiclb_cache_lock_timeouts_total 0$/m);
  assert.match(text, /^# TYPE quiclb_cache_entries gauge\nquiclb_cache_entries 1$/m);
  assert.match(text, /^quiclb_cache_enabled 1$/m);
  const off = renderMetrics({ config: ctx.config, state: ctx.state, startedAt: 0, workers: 1, latency: [] });
  assert.match(off, /^quiclb_cache_enabled 0$/m);
  assert.doesNotMatch(off, /quiclb_cache_hits_total/);
});

test('POST /cache/purge removes entries under a path or URL prefix, or all', async () => {
  const ctx = context();
  const cache = ctx.cache!;
  for (const p of ['/theme/a.css', '/theme/b.css', '/lib/c.js']) await storeThrough(cache, get(p), CSS, p);
  assert.equal(isAdminPath('/cache/purge?prefix=/x'), true);
  let r = await call(ctx, { method: 'POST', path: '/cache/purge?prefix=%2Ftheme%2Fa', remoteAddress: '127.0.0.1' });
  assert.deepEqual([r.status, r.body], [200, { purged: 1, prefix: '/theme/a' }]);
  r = await call(ctx, { method: 'POST', path: `/cache/purge?prefix=${encodeURIComponent('https://moodle.example.edu/theme/')}`, remoteAddress: '127.0.0.1' });
  assert.deepEqual(r.body, { purged: 1, prefix: 'https://moodle.example.edu/theme/' });
  r = await call(ctx, { method: 'POST', path: '/cache/purge', remoteAddress: '127.0.0.1' });
  assert.deepEqual(r.body, { purged: 1, prefix: null });
  assert.equal(cache.stats().purged, 3);
  assert.equal(cache.stats().entries, 0);
});

test('POST /cache/purge: the access rules of /stats, no web page, POST only, a cache that is on', async () => {
  const open = context();
  const cases: Array<[AdminContext, Parameters<typeof memoryExchange>[0], number, RegExp]> = [
    [open, { method: 'GET', path: '/cache/purge', remoteAddress: '127.0.0.1' }, 405, /use POST/],
    [open, { method: 'POST', path: '/cache/purge', remoteAddress: '198.51.100.7' }, 403, /allowFrom/],
    [open, { method: 'POST', path: '/cache/purge', remoteAddress: '127.0.0.1', headers: [['origin', 'https://evil.example']] }, 403, /CSRF/],
    [open, { method: 'POST', path: '/cache/purge', remoteAddress: '127.0.0.1', headers: [['origin', 'http://moodle.example.edu']] }, 403, /CSRF/],
    [open, { method: 'POST', path: '/cache/purge', remoteAddress: '127.0.0.1', headers: [['sec-fetch-site', 'same-origin']] }, 403, /CSRF/],
    [open, { method: 'POST', path: '/cache/purge?prefix=theme', remoteAddress: '127.0.0.1' }, 400, /matches nothing/],
    [context({ token: 'secret-token' }), { method: 'POST', path: '/cache/purge', remoteAddress: '127.0.0.1' }, 401, /Bearer/],
    [context({}, false), { method: 'POST', path: '/cache/purge', remoteAddress: '127.0.0.1' }, 404, /cache is off/],
  ];
  for (const [ctx, init, status, error] of cases) {
    const r = await call(ctx, init);
    assert.equal(r.status, status, JSON.stringify(init));
    assert.match(r.body.error, error);
  }
  const withToken = context({ token: 'secret-token' });
  const ok = await call(withToken, { method: 'POST', path: '/cache/purge', remoteAddress: '127.0.0.1', headers: [['authorization', 'Bearer secret-token']] });
  assert.equal(ok.status, 200);
});
