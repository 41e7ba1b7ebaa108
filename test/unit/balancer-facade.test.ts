import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SharedState, B_HEALTHY, B_ACTIVE } from '../../src/shared/state.ts';
import type { BackendConfig, LoadBalancerConfig, Strategy } from '../../src/config/types.ts';
import { Balancer, type SelectRequest } from '../../src/balancer/balancer.ts';
import { SessionTable } from '../../src/balancer/session-table.ts';
import { affinityToken, parseCookies, parseSetCookie } from '../../src/balancer/affinity.ts';

const COOKIE = 'QUICLB_AFFINITY';

function backend(id: string, extra: Partial<BackendConfig> = {}): BackendConfig {
  return { id, protocol: 'http', host: '127.0.0.1', port: 9000, weight: 1, healthy: true, maxConnections: 0, group: 'default', ...extra };
}

function makeBalancer(servers: BackendConfig[], over: Partial<LoadBalancerConfig> = {}, strategy: Strategy = 'round_robin') {
  const lb: LoadBalancerConfig = {
    strategy,
    sessionPersistence: true,
    connectionMigration: true,
    affinityCookie: COOKIE,
    backendServers: servers,
    routes: [],
    retryIdempotent: true,
    connectTimeoutMs: 1000,
    backendTimeoutMs: 5000,
    ...over,
  };
  const state = new SharedState();
  servers.forEach((s, i) => state.initBackend(i, s.healthy));
  const sessions = new SessionTable(undefined, 1024);
  return { balancer: new Balancer({ lb, sessionCookie: 'MoodleSession', state, sessions }), state, sessions, lb };
}

function req(cookieHeader: string[] = [], extra: Partial<SelectRequest> = {}): SelectRequest {
  return { host: 'lms.example.org', path: '/course/view.php', clientIp: '192.0.2.1', cookies: parseCookies(cookieHeader), ...extra };
}

test('first request uses the strategy and gets an affinity cookie; the cookie then pins the client', () => {
  const { balancer } = makeBalancer([backend('a'), backend('b'), backend('c')]);
  const first = balancer.select(req());
  assert.ok(first);
  assert.equal(first.reason, 'strategy');
  const setCookie = balancer.afterResponse(req().cookies, first.backend, [], true);
  assert.ok(setCookie);
  assert.match(setCookie, /; Secure$/);
  const c = parseSetCookie(setCookie)!;
  assert.equal(c.name, COOKIE);
  assert.equal(c.value, affinityToken(first.backend));

  // The browser sends it back: every following request goes to the same backend, though round robin
  // alone would rotate.
  const pinned = req([`${c.name}=${c.value}`]);
  for (let i = 0; i < 10; i++) {
    const s = balancer.select(pinned);
    assert.equal(s?.backend.index, first.backend.index);
    assert.equal(s?.reason, 'affinity');
    assert.equal(balancer.afterResponse(pinned.cookies, s!.backend, []), undefined, 'no new cookie when already pinned');
  }
});

test('failover: pinned backend marked down -> strategy picks another, and the client is re-pinned', () => {
  const { balancer, state } = makeBalancer([backend('a'), backend('b')]);
  const a = balancer.byIndex(0)!;
  const pinned = req([`${COOKIE}=${affinityToken(a)}; MoodleSession=sess1`]);
  assert.equal(balancer.select(pinned)?.backend.id, 'a');
  balancer.afterResponse(new Map(), a, ['MoodleSession=sess1; Path=/']); // a issued the session

  state.setBackendGauge(0, B_HEALTHY, 0);
  const s = balancer.select(pinned);
  assert.equal(s?.backend.id, 'b');
  assert.equal(s?.reason, 'strategy');
  const setCookie = balancer.afterResponse(pinned.cookies, s!.backend, [], false);
  assert.equal(setCookie, `${COOKIE}=${affinityToken(s!.backend)}; Path=/; HttpOnly; SameSite=Lax`);

  // a comes back, but a client without the new cookie (e.g. a second tab's request in flight) still
  // follows its session to b: the session table was re-pinned too.
  state.setBackendGauge(0, B_HEALTHY, 1);
  const bySession = balancer.select(req(['MoodleSession=sess1']));
  assert.deepEqual([bySession?.backend.id, bySession?.reason], ['b', 'session']);
});

test('a session id the client invented is never recorded (the table holds only ids a backend issued)', () => {
  const { balancer, sessions } = makeBalancer([backend('a'), backend('b')]);
  const a = balancer.byIndex(0)!;
  balancer.afterResponse(req(['MoodleSession=made-up']).cookies, a, [], false);
  assert.equal(sessions.lookup('made-up'), undefined);
});

test('excluded pinned backend (retry) goes to another one', () => {
  const { balancer } = makeBalancer([backend('a'), backend('b')]);
  const pinned = req([`${COOKIE}=${affinityToken({ id: 'a' })}`], { exclude: new Set([0]) });
  assert.equal(balancer.select(pinned)?.backend.id, 'b');
});

test('Moodle session id set by the backend pins later requests through the shared table', () => {
  const { balancer, sessions } = makeBalancer([backend('a'), backend('b'), backend('c')]);
  const c = balancer.byIndex(2)!;
  balancer.afterResponse(new Map(), c, ['MoodleSession=newsess; path=/; secure; HttpOnly']);
  assert.equal(sessions.lookup('newsess'), 2);
  // Another thread's Balancer over the same buffer sees it.
  const other = new SessionTable(sessions.buffer);
  assert.equal(other.lookup('newsess'), 2);
  for (let i = 0; i < 5; i++) {
    const s = balancer.select(req(['MoodleSession=newsess']));
    assert.deepEqual([s?.backend.id, s?.reason], ['c', 'session']);
  }
  // Logout: Moodle deletes the cookie; the id is forgotten.
  balancer.afterResponse(parseCookies(['MoodleSession=newsess']), c, ['MoodleSession=deleted; expires=Thu, 01 Jan 1970 00:00:00 GMT']);
  assert.equal(sessions.lookup('newsess'), undefined);
});

test('an affinity cookie for a backend outside the route group is ignored', () => {
  const { balancer } = makeBalancer([backend('web1'), backend('web2'), backend('ws1', { group: 'ws' })], {
    routes: [{ pathPrefix: '/webservice', group: 'ws' }],
  });
  const s = balancer.select(req([`${COOKIE}=${affinityToken({ id: 'web1' })}`], { path: '/webservice/rest/server.php' }));
  assert.deepEqual([s?.backend.id, s?.reason], ['ws1', 'strategy']);
});

test('routes by host and longest prefix select the group backends', () => {
  const { balancer } = makeBalancer(
    [backend('web1'), backend('web2'), backend('adm', { group: 'admin' }), backend('tool', { group: 'tools' }), backend('files', { group: 'files' })],
    {
      routes: [
        { pathPrefix: '/admin', group: 'admin' },
        { pathPrefix: '/admin/tool', group: 'tools' },
        { host: 'files.example.org', group: 'files' },
      ],
    },
  );
  const pick = (host: string, path: string) => balancer.select(req([], { host, path }))?.backend.id;
  assert.equal(pick('lms.example.org', '/admin/settings.php'), 'adm');
  assert.equal(pick('lms.example.org', '/admin/tool/task/'), 'tool');
  assert.equal(pick('FILES.example.org:443', '/pluginfile.php'), 'files');
  const seen = new Set([pick('lms.example.org', '/'), pick('lms.example.org', '/'), pick('lms.example.org', '/')]);
  assert.deepEqual([...seen].sort(), ['web1', 'web2']);
});

test('when no backend is in group "default", unrouted requests use all backends', () => {
  const { balancer } = makeBalancer([backend('x', { group: 'g1' }), backend('y', { group: 'g2' })], { routes: [{ host: 'g1.example', group: 'g1' }] });
  const ids = new Set(Array.from({ length: 4 }, () => balancer.select(req())?.backend.id));
  assert.deepEqual([...ids].sort(), ['x', 'y']);
  assert.equal(balancer.select(req([], { host: 'g1.example' }))?.backend.id, 'x');
});

test('a route to a group without backends is a config error with a stable code', () => {
  assert.throws(() => makeBalancer([backend('a')], { routes: [{ pathPrefix: '/x', group: 'missing' }] }), { code: 'QUICLB_ROUTE_GROUP_EMPTY' });
});

test('sessionPersistence false: no affinity, no session pinning, no cookie', () => {
  const { balancer, sessions } = makeBalancer([backend('a'), backend('b')], { sessionPersistence: false });
  const r = req([`${COOKIE}=${affinityToken({ id: 'a' })}; MoodleSession=s`]);
  const picks = [balancer.select(r)!, balancer.select(r)!];
  assert.deepEqual(picks.map((p) => [p.backend.id, p.reason]), [['a', 'strategy'], ['b', 'strategy']]);
  assert.equal(balancer.afterResponse(r.cookies, picks[1].backend, ['MoodleSession=t']), undefined);
  assert.equal(sessions.lookup('t'), undefined);
});

test('all backends down or full -> undefined', () => {
  const { balancer, state } = makeBalancer([backend('a'), backend('b', { maxConnections: 1 })], {}, 'least_connections');
  state.setBackendGauge(0, B_HEALTHY, 0);
  state.addBackendGauge(1, B_ACTIVE, 1);
  assert.equal(balancer.select(req([`${COOKIE}=${affinityToken({ id: 'b' })}`])), undefined);
  state.addBackendGauge(1, B_ACTIVE, -1);
  assert.equal(balancer.select(req())?.backend.id, 'b');
});
