// The admin phase in a real pipeline: quiclb answers its own paths (through the pipeline's response filters)
// and passes every other path on; with admin.port set, the admin paths are served on that port only and the
// admin port answers nothing else.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { validateConfig } from '../../src/config/load.ts';
import { adminPhase } from '../../src/pipeline/phases/admin.ts';
import type { AdminContext } from '../../src/admin/routes.ts';
import type { Phase } from '../../src/pipeline/phase.ts';
import { B_HEALTHY, SharedState } from '../../src/shared/state.ts';
import { header } from '../support/memory-exchange.ts';
import { answering, runPhases } from '../support/phase-rig.ts';

function context(admin: Record<string, unknown> = {}): AdminContext {
  const config = validateConfig({ admin, loadBalancer: { backendServers: [{ id: 'web1', host: '127.0.0.1', port: 8081 }] } });
  const state = new SharedState();
  state.initBackend(0, true);
  return { config, state, startedAt: Date.now(), workers: 1, collectLatency: async () => [] };
}

/** A response filter after admin: every answer that goes through the pipeline carries its mark. */
const stamp: Phase = {
  name: 'stamp',
  response(_ex, head) {
    head.headers.push(['x-filtered', String(head.status)]);
  },
};

test('admin: /api/test and /health are answered by quiclb through the response filters; the next phase never sees them', async () => {
  const ctx = context();
  const backend = answering();
  const api = await runPhases([adminPhase(ctx), stamp, backend], { path: '/api/test', protocol: 'HTTP/2', remoteAddress: '198.51.100.7' });
  assert.equal(api.r.status, 200);
  assert.deepEqual(JSON.parse(api.r.body.toString()), { ok: true, protocol: 'HTTP/2' });
  assert.equal(header(api.r.headers, 'x-filtered'), '200', 'the admin answer passed the response filters');
  assert.equal(api.ex.answeredBy, 'admin');
  assert.equal(api.ex.status, 200);

  const health = await runPhases([adminPhase(ctx), stamp, backend], { path: '/health?verbose=1', remoteAddress: '127.0.0.1' });
  assert.equal(health.r.status, 200);
  assert.equal(JSON.parse(health.r.body.toString()).status, 'ok');
  assert.equal(header(health.r.headers, 'x-filtered'), '200');

  // The report reads SharedState: the only backend down makes /health 503.
  ctx.state.setBackendGauge(0, B_HEALTHY, 0);
  const down = await runPhases([adminPhase(ctx), backend], { path: '/health', remoteAddress: '127.0.0.1' });
  assert.equal(down.r.status, 503);
  assert.equal(JSON.parse(down.r.body.toString()).status, 'down');
  assert.equal(backend.reached.length, 0);
});

test('admin: access control and methods are answered by quiclb too (403 outside allowFrom, 405 for POST)', async () => {
  const ctx = context();
  const backend = answering();
  const outside = await runPhases([adminPhase(ctx), backend], { path: '/stats', remoteAddress: '203.0.113.9' });
  assert.equal(outside.r.status, 403);
  assert.equal(outside.ex.answeredBy, 'admin');
  const post = await runPhases([adminPhase(ctx), backend], { method: 'POST', path: '/health', remoteAddress: '127.0.0.1', bodyText: 'x' });
  assert.equal(post.r.status, 405);
  assert.equal(header(post.r.headers, 'allow'), 'GET, HEAD');
  assert.equal(backend.reached.length, 0);
});

test('admin: other paths go on to the next phase untouched', async () => {
  const ctx = context();
  const backend = answering('moodle');
  for (const path of ['/', '/course/view.php?id=2', '/healthz', '/health/x', '/admin/cli/healthcheck.php']) {
    const { r, ex } = await runPhases([adminPhase(ctx), backend], { path, remoteAddress: '127.0.0.1' });
    assert.equal(r.body.toString(), 'moodle', path);
    assert.equal(ex.answeredBy, undefined, path);
  }
  assert.equal(backend.reached.length, 5);
});

test('admin.port: admin paths on the public ports go to the backend; the admin port serves them and 404s the rest', async () => {
  const ctx = context({ port: 9901 });
  const backend = answering('moodle');
  const publicHealth = await runPhases([adminPhase(ctx), backend], { path: '/health', localPort: 8080, remoteAddress: '127.0.0.1' });
  assert.equal(publicHealth.r.body.toString(), 'moodle', '/health on a public port is Moodle\'s');
  assert.equal(publicHealth.ex.answeredBy, undefined);

  const adminHealth = await runPhases([adminPhase(ctx), backend], { path: '/health', localPort: 9901, remoteAddress: '127.0.0.1' });
  assert.equal(adminHealth.r.status, 200);
  assert.equal(JSON.parse(adminHealth.r.body.toString()).status, 'ok');

  const other = await runPhases([adminPhase(ctx), stamp, backend], { method: 'POST', path: '/course/view.php', localPort: 9901, remoteAddress: '127.0.0.1', bodyText: 'id=2' });
  assert.equal(other.r.status, 404);
  assert.match(other.r.body.toString(), /admin port serves/);
  assert.equal(header(other.r.headers, 'x-filtered'), '404');
  assert.equal(other.m.req.body?.readableFlowing, true, 'the request body is drained, not left unread');
  assert.equal(backend.reached.length, 1, 'only the public /health reached the backend');
});
