import { test } from 'node:test';
import assert from 'node:assert/strict';
import { validateConfig } from '../../src/config/load.ts';
import { RateLimiter, type RequestVerdict } from '../../src/ratelimit/limiter.ts';
import { LoginPaths } from '../../src/ratelimit/login-paths.ts';

const T0 = 1_700_000_000_000;

/** A limiter on an injected clock: `clock.now` is what every call sees. */
function limiter(rateLimit: Record<string, unknown>, server: Record<string, unknown> = {}) {
  const config = validateConfig({ rateLimit: { enabled: true, maxClients: 1024, ...rateLimit }, server });
  const clock = { now: T0 };
  return { rl: RateLimiter.create(config, { now: () => clock.now }), clock, config };
}

function accepted(rl: RateLimiter, address: string, n: number, method = 'GET', path = '/course/view.php?id=2'): number {
  let ok = 0;
  for (let i = 0; i < n; i++) if (rl.checkRequest(address, method, path).ok) ok++;
  return ok;
}

function refused(v: RequestVerdict): Extract<RequestVerdict, { ok: false }> {
  assert.equal(v.ok, false, 'expected a refusal');
  return v as Extract<RequestVerdict, { ok: false }>;
}

test('off by default: nothing is limited and the table is tiny', () => {
  const config = validateConfig({});
  assert.equal(config.rateLimit.enabled, false);
  const rl = RateLimiter.create(config);
  assert.equal(accepted(rl, '203.0.113.7', 1000), 1000);
  assert.equal(rl.acquireConnection('203.0.113.7').ok, true);
  assert.ok(rl.shared.table.byteLength < 4096, `${rl.shared.table.byteLength} bytes`);
});

test('burst then 429 with Retry-After, recovery after the refill time, a second client unaffected', () => {
  const { rl, clock } = limiter({ requestsPerSecond: 20, burst: 20 });
  assert.equal(accepted(rl, '203.0.113.7', 80), 20);
  const v = refused(rl.checkRequest('203.0.113.7', 'GET', '/'));
  assert.equal(v.reason, 'general');
  assert.equal(v.retryAfterSeconds, 1); // 50 ms to the next token, rounded up to a whole second
  assert.equal(v.client, '203.0.113.7');
  assert.equal(accepted(rl, '203.0.113.8', 80), 20, 'another client has its own bucket');
  clock.now += 500;
  assert.equal(accepted(rl, '203.0.113.7', 80), 10, 'half a second refills 10');
  clock.now += 60_000;
  assert.equal(accepted(rl, '203.0.113.7', 80), 20, 'a minute later: a full burst, no more');
  assert.equal(rl.stats().limited.general, 61 + 60 + 70 + 60);
});

test('the login bucket trips before the general one, and only for login requests', () => {
  const { rl, clock } = limiter({ requestsPerSecond: 20, burst: 20, login: { requestsPerSecond: 0.1, burst: 3 } });
  const ip = '198.51.100.23';
  assert.equal(accepted(rl, ip, 3, 'POST', '/login/index.php'), 3);
  const v = refused(rl.checkRequest(ip, 'POST', '/login/index.php'));
  assert.equal(v.reason, 'login');
  assert.equal(v.retryAfterSeconds, 10, 'one login token per 10 s');
  assert.equal(refused(rl.checkRequest(ip, 'GET', '/login/token.php?username=a&password=b')).reason, 'login', 'token.php: any method, query ignored');
  // Showing the login form (GET) and the rest of the site are not login attempts.
  assert.equal(rl.checkRequest(ip, 'GET', '/login/index.php').ok, true);
  assert.equal(rl.checkRequest(ip, 'POST', '/login/index.php/x').ok, true, 'exact path only');
  // The refused logins took no general token: 3 logins + 2 other requests so far, 15 left.
  assert.equal(accepted(rl, ip, 100), 15);
  // A client whose general bucket is empty is refused a login for the general reason, login tokens or not.
  assert.equal(accepted(rl, '198.51.100.24', 20), 20);
  const g = refused(rl.checkRequest('198.51.100.24', 'POST', '/login/index.php'));
  assert.equal(g.reason, 'general');
  assert.equal(g.retryAfterSeconds, 1);
  // And its login bucket was not charged: after the general refill it still has 3 login attempts.
  clock.now += 1000;
  assert.equal(accepted(rl, '198.51.100.24', 5, 'POST', '/login/index.php'), 3);
  const stats = rl.stats().limited;
  assert.equal(stats.login, 2 + 2);
  assert.equal(stats.general, 85 + 1);
});

test('IPv6 clients share one bucket per /64; IPv4-mapped addresses are the IPv4 client', () => {
  const { rl } = limiter({ requestsPerSecond: 1, burst: 10 });
  assert.equal(accepted(rl, '2001:db8:1:2::1', 6), 6);
  assert.equal(accepted(rl, '2001:db8:1:2:dead:beef:0:1', 6), 4, 'same /64: 4 left');
  assert.equal(refused(rl.checkRequest('[2001:db8:1:2::77]', 'GET', '/')).client, '2001:db8:1:2::/64');
  assert.equal(accepted(rl, '2001:db8:1:3::1', 10), 10, 'next /64: its own bucket');
  assert.equal(accepted(rl, '::ffff:192.0.2.5', 6), 6);
  assert.equal(accepted(rl, '192.0.2.5', 6), 4, 'the mapped and plain forms are one client');
});

test('allow-listed clients and non-IP addresses are never limited', () => {
  const { rl } = limiter({ requestsPerSecond: 1, burst: 1, maxConnectionsPerClient: 1, allowList: ['10.0.0.0/8', '2001:db8:5::/48'] });
  assert.equal(accepted(rl, '10.1.2.3', 100), 100);
  assert.equal(accepted(rl, '::ffff:10.1.2.3', 100), 100);
  assert.equal(accepted(rl, '2001:db8:5:9::1', 100), 100);
  assert.equal(accepted(rl, '', 100), 100);
  for (let i = 0; i < 5; i++) assert.equal(rl.acquireConnection('10.1.2.3').ok, true);
  assert.equal(accepted(rl, '11.1.2.3', 100), 1, 'outside the list: limited');
  assert.equal(rl.stats().table.evictions, 0);
});

test('a refusal is logged at most once per client per logInterval, whatever the reason', () => {
  const { rl, clock } = limiter({ requestsPerSecond: 0.001, burst: 1, maxConnectionsPerClient: 1, logInterval: '1m' });
  rl.checkRequest('192.0.2.1', 'GET', '/');
  const logs = () => {
    const v = rl.checkRequest('192.0.2.1', 'GET', '/');
    return v.ok ? 'ok' : v.log;
  };
  assert.equal(logs(), true);
  assert.equal(logs(), false);
  assert.equal(logs(), false);
  assert.ok(rl.acquireConnection('192.0.2.1').ok);
  const c = rl.acquireConnection('192.0.2.1');
  assert.ok(!c.ok && c.log === false, 'a connection refusal within the interval is not logged either');
  // Another client is logged on its own schedule.
  rl.checkRequest('192.0.2.2', 'GET', '/');
  assert.equal(refused(rl.checkRequest('192.0.2.2', 'GET', '/')).log, true);
  clock.now += 59_000;
  assert.equal(logs(), false);
  clock.now += 1_000;
  assert.equal(logs(), true, 'a minute after the last log line');
  assert.equal(logs(), false);
});

test('connections per client: refused at the limit, release is idempotent, the count never goes negative', () => {
  const { rl } = limiter({ maxConnectionsPerClient: 3 }, { trustedProxies: ['192.0.2.0/24'] });
  const leases = [];
  for (let i = 0; i < 3; i++) {
    const v = rl.acquireConnection('::ffff:203.0.113.7');
    assert.ok(v.ok);
    assert.equal(v.lease.counted, true);
    leases.push(v.lease);
  }
  const over = rl.acquireConnection('203.0.113.7');
  assert.ok(!over.ok);
  assert.equal(over.reason, 'connections');
  assert.equal(over.limit, 3);
  assert.equal(rl.openConnections('203.0.113.7'), 3);
  leases[0].release();
  leases[0].release(); // a second close path: gives nothing more back
  assert.equal(rl.openConnections('203.0.113.7'), 2);
  assert.ok(rl.acquireConnection('203.0.113.7').ok, 'one place freed');
  assert.ok(!rl.acquireConnection('203.0.113.7').ok);
  for (const l of leases) l.release();
  assert.equal(rl.openConnections('203.0.113.7'), 1);
  // A trusted proxy (a CDN node) carries many clients: its connections are not counted.
  for (let i = 0; i < 10; i++) {
    const v = rl.acquireConnection('192.0.2.9');
    assert.ok(v.ok && !v.lease.counted);
  }
  assert.equal(rl.stats().limited.connections, 2);
});

test('maxConnectionsPerClient 0 counts nothing', () => {
  const { rl } = limiter({ maxConnectionsPerClient: 0 });
  for (let i = 0; i < 1000; i++) assert.equal(rl.acquireConnection('203.0.113.7').ok, true);
  assert.equal(rl.openConnections('203.0.113.7'), 0);
});

test('attach() shares the buckets and counters of the limiter create() made', () => {
  const { rl, config, clock } = limiter({ requestsPerSecond: 20, burst: 20 });
  const other = RateLimiter.attach(rl.shared, config, { now: () => clock.now });
  assert.equal(accepted(rl, '203.0.113.7', 15), 15);
  assert.equal(accepted(other, '203.0.113.7', 15), 5);
  assert.equal(rl.stats().limited.general, 10);
  assert.throws(() => RateLimiter.attach({ table: new SharedArrayBuffer(64), counters: rl.shared.counters }, config), { code: 'QUICLB_CLIENT_TABLE_BUFFER' });
});

test('login path entries: methods are case-sensitive, an entry without methods takes any, duplicates merge', () => {
  const p = new LoginPaths([{ path: '/a', methods: ['POST'] }, { path: '/a', methods: ['PUT'] }, { path: '/b' }, { path: '/c', methods: ['GET'] }, { path: '/c' }]);
  assert.ok(p.matches('POST', '/a'));
  assert.ok(p.matches('PUT', '/a?x=1'));
  assert.ok(!p.matches('post', '/a'));
  assert.ok(!p.matches('GET', '/a'));
  assert.ok(p.matches('DELETE', '/b'));
  assert.ok(p.matches('POST', '/c'));
  assert.ok(!p.matches('POST', '/'));
  assert.ok(!new LoginPaths([]).matches('POST', '/login/index.php'));
});
