import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ConfigError, defaultConfigJson, toJson, validateConfig } from '../../src/config/load.ts';

function issues(raw: unknown): string[] {
  try {
    validateConfig(raw);
  } catch (err) {
    assert.ok(err instanceof ConfigError);
    return err.issues.map((i) => i.message);
  }
  assert.fail('expected a ConfigError');
}

test('rateLimit defaults: off, Moodle login paths, and server.trustedProxies empty', () => {
  const c = validateConfig({});
  assert.deepEqual(c.rateLimit, {
    enabled: false,
    requestsPerSecond: 50,
    burst: 200,
    login: {
      requestsPerSecond: 1,
      burst: 20,
      paths: [{ path: '/login/index.php', methods: ['POST'] }, { path: '/login/token.php' }],
    },
    maxConnectionsPerClient: 256,
    allowList: [],
    maxClients: 65536,
    logIntervalMs: 60_000,
  });
  assert.deepEqual(c.server.trustedProxies, []);
  // generate-config writes the section, and check-config writes it back the same way.
  assert.deepEqual(validateConfig(defaultConfigJson()).rateLimit, c.rateLimit);
  assert.equal((toJson(c).rateLimit as Record<string, unknown>).logInterval, '1m');
});

test('rateLimit fields are set, CIDRs normalised, fractional rates allowed', () => {
  const c = validateConfig({
    server: { trustedProxies: ['192.0.2.0/24', '2001:db8::1'] },
    rateLimit: {
      enabled: true,
      requestsPerSecond: 0.5,
      burst: 5,
      login: { requestsPerSecond: 0.05, burst: 2, paths: [{ path: '/moodle/login/index.php', methods: ['POST'] }] },
      maxConnectionsPerClient: 0,
      allowList: ['10.0.0.0/8', '203.0.113.9'],
      maxClients: 4096,
      logInterval: '30s',
    },
  });
  assert.deepEqual(c.server.trustedProxies, ['192.0.2.0/24', '2001:db8::1/128']);
  assert.equal(c.rateLimit.requestsPerSecond, 0.5);
  assert.deepEqual(c.rateLimit.allowList, ['10.0.0.0/8', '203.0.113.9/32']);
  assert.deepEqual(c.rateLimit.login.paths, [{ path: '/moodle/login/index.php', methods: ['POST'] }]);
  assert.equal(c.rateLimit.logIntervalMs, 30_000);
  // A partial login section keeps the default paths.
  assert.equal(validateConfig({ rateLimit: { login: { burst: 3 } } }).rateLimit.login.paths.length, 2);
});

test('bad rateLimit values are refused, each naming its field', () => {
  assert.deepEqual(
    issues({
      server: { trustedProxies: ['cdn.example.com'] },
      rateLimit: {
        enabled: 'yes',
        requestsPerSecond: 0,
        burst: 0.5,
        login: { requestsPerSecond: -1, paths: [{ path: 'login/index.php' }, { path: '/a?b=1' }, { path: '/x', methods: [] }, { path: '/y', methods: ['P OST'] }] },
        maxConnectionsPerClient: -1,
        allowList: ['10.0.0.0/33'],
        maxClients: 10,
        logInterval: 'soon',
        extra: 1,
      },
    }),
    [
      'rateLimit.extra: unknown field',
      'server.trustedProxies[0]: expected CIDR like "10.0.0.0/8" or IP address, got "cdn.example.com"',
      'rateLimit.enabled: expected true or false, got "yes"',
      'rateLimit.requestsPerSecond: expected number > 0 and at most 1000000, got 0',
      'rateLimit.burst: expected integer 1..1000000, got 0.5',
      'rateLimit.login.requestsPerSecond: expected number > 0 and at most 1000000, got -1',
      'rateLimit.login.paths[0].path: expected path starting with "/", got "login/index.php"',
      'rateLimit.login.paths[1].path: expected path without a query string (it is ignored when matching), got "/a?b=1"',
      'rateLimit.login.paths[2].methods: expected at least one method, or no methods field for every method, got []',
      'rateLimit.login.paths[3].methods[0]: expected HTTP method like "POST", got "P OST"',
      'rateLimit.maxConnectionsPerClient: expected integer 0..1000000, got -1',
      'rateLimit.allowList[0]: expected CIDR like "10.0.0.0/8" or IP address, got "10.0.0.0/33"',
      'rateLimit.maxClients: expected integer 1024..1048576, got 10',
      'rateLimit.logInterval: expected duration like "500ms", "10s", "2m", "1h" or integer milliseconds, got "soon"',
    ],
  );
});
