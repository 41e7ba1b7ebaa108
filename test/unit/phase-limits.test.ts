// The limits phase in a real pipeline with a real RateLimiter (on an injected clock): a client over its
// bucket gets quiclb's 429 with Retry-After (RFC 6585 §4) and never reaches the next phase; the refusal is
// logged once per logInterval and counted; the client is the socket peer unless a trusted proxy names it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { validateConfig } from '../../src/config/load.ts';
import { RateLimiter } from '../../src/ratelimit/limiter.ts';
import { limitsPhase } from '../../src/pipeline/phases/limits.ts';
import type { Logger } from '../../src/shared/logger.ts';
import { header } from '../support/memory-exchange.ts';
import { answering, capturingLogger, runPhases, silentLogger } from '../support/phase-rig.ts';

const T0 = 1_700_000_000_000;

function limited(rateLimit: Record<string, unknown>, server: Record<string, unknown> = {}, logger: Logger = silentLogger) {
  const config = validateConfig({ rateLimit: { enabled: true, maxClients: 1024, ...rateLimit }, server });
  const clock = { now: T0 };
  const limiter = RateLimiter.create(config, { now: () => clock.now });
  return { phase: limitsPhase(config, limiter, logger)!, limiter, clock };
}

test('limits: off (the default), there is no phase', () => {
  const config = validateConfig({});
  assert.equal(limitsPhase(config, RateLimiter.create(config), silentLogger), undefined);
});

test('limits: over the burst a client gets 429 + Retry-After from quiclb, logged once, counted; others pass', async () => {
  const { logger, lines } = capturingLogger();
  const { phase, limiter, clock } = limited({ requestsPerSecond: 1, burst: 2 }, {}, logger);
  const backend = answering();
  const from = (remoteAddress: string, init: Record<string, unknown> = {}) => runPhases([phase, backend], { remoteAddress, ...init });
  assert.equal((await from('203.0.113.7')).r.status, 200);
  assert.equal((await from('203.0.113.7')).r.status, 200);
  const refused = await from('203.0.113.7', { method: 'POST', path: '/mod/forum/post.php', bodyText: 'message=hi' });
  assert.equal(refused.r.status, 429);
  assert.equal(header(refused.r.headers, 'retry-after'), '1');
  assert.match(refused.r.body.toString(), /^429 Too many requests from your address/);
  assert.equal(refused.ex.answeredBy, 'limits');
  assert.equal(refused.m.req.body?.readableFlowing, true, 'the refused request\'s body is drained');
  assert.equal((await from('203.0.113.7')).r.status, 429);
  assert.equal((await from('198.51.100.1')).r.status, 200, 'another client has its own bucket');
  assert.equal(backend.reached.length, 3);
  assert.equal(limiter.stats().limited.general, 2);

  const warnings = lines.filter((l) => l.msg?.toString().startsWith('client rate-limited'));
  assert.equal(warnings.length, 1, 'one log line per client per logInterval');
  assert.equal(warnings[0].client, '203.0.113.7');
  assert.equal(warnings[0].path, '/mod/forum/post.php');

  clock.now += 1000; // one token back
  assert.equal((await from('203.0.113.7')).r.status, 200);
});

test('limits: login paths use their own, smaller bucket', async () => {
  const { phase, limiter } = limited({ requestsPerSecond: 100, burst: 100, login: { requestsPerSecond: 1, burst: 1 } });
  const backend = answering();
  const login = () => runPhases([phase, backend], { method: 'POST', path: '/login/index.php', remoteAddress: '203.0.113.8', bodyText: 'username=a' });
  assert.equal((await login()).r.status, 200);
  const second = await login();
  assert.equal(second.r.status, 429);
  assert.match(second.r.body.toString(), /too many login attempts/i);
  assert.equal((await runPhases([phase, backend], { path: '/my/', remoteAddress: '203.0.113.8' })).r.status, 200, 'other pages still pass');
  assert.equal(limiter.stats().limited.login, 1);
});

test('limits: X-Forwarded-For names the client only when the peer is a trusted proxy', async () => {
  const { phase } = limited({ requestsPerSecond: 1, burst: 1 }, { trustedProxies: ['10.0.0.0/8'] });
  const backend = answering();
  const via = (peer: string, xff: string) => runPhases([phase, backend], { remoteAddress: peer, headers: [['host', 'moodle.example.edu'], ['x-forwarded-for', xff]] });
  // Behind the CDN node 10.0.0.1, two clients each have their own bucket.
  assert.equal((await via('10.0.0.1', '198.51.100.1')).r.status, 200);
  assert.equal((await via('10.0.0.1', '198.51.100.2')).r.status, 200);
  assert.equal((await via('10.0.0.1', '198.51.100.1')).r.status, 429);
  // An untrusted peer cannot escape its bucket by sending a new X-Forwarded-For each time.
  assert.equal((await via('203.0.113.20', '192.0.2.1')).r.status, 200);
  assert.equal((await via('203.0.113.20', '192.0.2.2')).r.status, 429);
});
