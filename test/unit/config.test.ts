import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, defaultConfigJson, loadConfig, toJson, validateConfig } from '../../src/config/load.ts';
import type { Config } from '../../src/config/types.ts';

let dir = '';
before(() => {
  dir = mkdtempSync(join(tmpdir(), 'quiclb-config-'));
});
after(() => {
  rmSync(dir, { recursive: true, force: true });
});

/** Asserts `fn` throws a ConfigError with exactly this message and path. */
function throwsConfig(fn: () => unknown, path: string, message: string): ConfigError {
  let caught: unknown;
  try {
    fn();
  } catch (err) {
    caught = err;
  }
  assert.ok(caught instanceof ConfigError, `expected ConfigError, got ${String(caught)}`);
  assert.equal(caught.code, 'QUICLB_CONFIG');
  assert.equal(caught.message, message);
  assert.equal(caught.path, path);
  assert.equal(caught.issues[0].message, message);
  return caught;
}

const backend = (id: string, port: number, extra: Record<string, unknown> = {}) => ({ id, host: '127.0.0.1', port, ...extra });

test('no file and no env gives every default', () => {
  const c = loadConfig({ env: {} });
  assert.deepEqual(c, validateConfig({}));
  assert.equal(c.server.httpPort, 8080);
  assert.equal(c.server.httpsPort, 9443);
  assert.equal(c.server.readTimeoutMs, 30_000);
  assert.equal(c.server.idleTimeoutMs, 60_000);
  assert.equal(c.server.maxHeaderSize, 16 * 1024);
  assert.equal(c.server.shutdownTimeoutMs, 10_000);
  assert.equal(c.quic.initialMaxData, 10 * 1024 * 1024);
  assert.equal(c.quic.udpBufferSize, 4 * 1024 * 1024);
  assert.equal(c.loadBalancer.strategy, 'round_robin');
  assert.deepEqual(c.loadBalancer.backendServers, []);
  assert.equal(c.loadBalancer.backendTimeoutMs, 60_000);
  assert.equal(c.healthCheck.intervalMs, 10_000);
  assert.deepEqual(c.admin.allowFrom, ['127.0.0.0/8', '::1/128']);
  assert.equal(c.tls.certFile, undefined);
  assert.equal(c.admin.token, undefined);
});

test('defaultConfigJson() validates to the defaults plus its two example backends', () => {
  const doc = defaultConfigJson();
  const fromDoc = validateConfig(doc);
  const defaults = validateConfig({});
  assert.deepEqual(fromDoc.loadBalancer.backendServers, [
    { id: 'moodle-1', protocol: 'http', host: '127.0.0.1', port: 8081, weight: 1, healthy: true, maxConnections: 0, group: 'default' },
    { id: 'moodle-2', protocol: 'http', host: '127.0.0.1', port: 8082, weight: 1, healthy: true, maxConnections: 0, group: 'default' },
  ]);
  // The document writes every defaulted backend field out, not just the required ones.
  assert.deepEqual((doc.loadBalancer as { backendServers: unknown[] }).backendServers, fromDoc.loadBalancer.backendServers);
  assert.deepEqual({ ...fromDoc, loadBalancer: { ...fromDoc.loadBalancer, backendServers: [] } }, defaults);
  assert.equal((doc.server as Record<string, unknown>).readTimeout, '30s');
  // Each call is a fresh document (the CLI may edit it).
  (doc.server as Record<string, unknown>).httpPort = 1;
  assert.equal((defaultConfigJson().server as Record<string, unknown>).httpPort, 8080);
});

test('JSON names drop the Ms suffix and accept plain integer milliseconds', () => {
  const c = validateConfig({
    server: { readTimeout: '1m30s', writeTimeout: 2500, maxBodySize: '2.5MB' },
    healthCheck: { interval: '2s', timeout: '500ms' },
    loadBalancer: { connectTimeout: '1s', backendTimeout: '2m' },
    quic: { idleTimeout: '1h' },
  });
  assert.equal(c.server.readTimeoutMs, 90_000);
  assert.equal(c.server.writeTimeoutMs, 2500);
  assert.equal(c.server.maxBodySize, 2_500_000);
  assert.equal(c.healthCheck.intervalMs, 2000);
  assert.equal(c.healthCheck.timeoutMs, 500);
  assert.equal(c.loadBalancer.connectTimeoutMs, 1000);
  assert.equal(c.loadBalancer.backendTimeoutMs, 120_000);
  assert.equal(c.quic.idleTimeoutMs, 3_600_000);
  assert.equal(c.loadBalancer.backendServers.length, 0);
  throwsConfig(() => validateConfig({ server: { readTimeoutMs: 5 } }), 'server.readTimeoutMs', 'server.readTimeoutMs: unknown field');
});

test('unknown key', () => {
  throwsConfig(() => validateConfig({ server: { htpPort: 80 } }), 'server.htpPort', 'server.htpPort: unknown field');
  throwsConfig(() => validateConfig({ sever: {} }), 'sever', 'sever: unknown field');
});

test('wrong type on a nested backend port', () => {
  const raw = { loadBalancer: { backendServers: [backend('a', 8081), backend('b', '80x' as unknown as number)] } };
  throwsConfig(
    () => validateConfig(raw),
    'loadBalancer.backendServers[1].port',
    'loadBalancer.backendServers[1].port: expected integer 1..65535, got "80x"',
  );
  throwsConfig(
    () => validateConfig({ loadBalancer: { backendServers: [backend('a', 0)] } }),
    'loadBalancer.backendServers[0].port',
    'loadBalancer.backendServers[0].port: expected integer 1..65535, got 0',
  );
  throwsConfig(
    () => validateConfig({ loadBalancer: { backendServers: [{ id: 'a', port: 1 }] } }),
    'loadBalancer.backendServers[0].host',
    'loadBalancer.backendServers[0].host: expected host name or IP address, got nothing',
  );
});

test('every issue is kept, the first is the message, and a misspelt key comes first', () => {
  const err = throwsConfig(
    () => validateConfig({ server: { readTimeout: 'soon', redirectHttpToHttps: 'yes' }, logging: { levl: 'info' } }),
    'logging.levl',
    'logging.levl: unknown field',
  );
  assert.deepEqual(
    err.issues.map((i) => i.message),
    [
      'logging.levl: unknown field',
      'server.readTimeout: expected duration like "500ms", "10s", "2m", "1h" or integer milliseconds, got "soon"',
      'server.redirectHttpToHttps: expected true or false, got "yes"',
    ],
  );
});

test('duplicate backend id names the second one', () => {
  const raw = { loadBalancer: { backendServers: [backend('b1', 1), backend('b2', 2), backend('b1', 3)] } };
  throwsConfig(() => validateConfig(raw), 'loadBalancer.backendServers[2].id', 'loadBalancer.backendServers[2].id: duplicate backend id "b1"');
});

test('route group must name a group some backend has', () => {
  const servers = [backend('a', 1), backend('b', 2, { group: 'courses' })];
  const ok = validateConfig({ loadBalancer: { backendServers: servers, routes: [{ pathPrefix: '/course', group: 'courses' }, { host: 'Moodle.Example.org', group: 'default' }] } });
  assert.deepEqual(ok.loadBalancer.routes, [{ pathPrefix: '/course', group: 'courses' }, { host: 'moodle.example.org', group: 'default' }]);
  throwsConfig(
    () => validateConfig({ loadBalancer: { backendServers: servers, routes: [{ group: 'courses' }, { group: 'files' }] } }),
    'loadBalancer.routes[1].group',
    'loadBalancer.routes[1].group: expected a group some backend has ("default", "courses"), got "files"',
  );
  throwsConfig(
    () => validateConfig({ loadBalancer: { backendServers: servers, routes: [{ pathPrefix: 'course', group: 'courses' }] } }),
    'loadBalancer.routes[0].pathPrefix',
    'loadBalancer.routes[0].pathPrefix: expected path starting with "/", got "course"',
  );
});

test('admin.allowFrom takes CIDRs and bare IPs, rejects bad ones', () => {
  const c = validateConfig({ admin: { allowFrom: ['10.0.0.0/8', '192.168.1.7', '::1', 'fd00::/8'] } });
  assert.deepEqual(c.admin.allowFrom, ['10.0.0.0/8', '192.168.1.7/32', '::1/128', 'fd00::/8']);
  throwsConfig(
    () => validateConfig({ admin: { allowFrom: ['127.0.0.0/8', '10.0.0.0/33'] } }),
    'admin.allowFrom[1]',
    'admin.allowFrom[1]: expected CIDR like "10.0.0.0/8" or IP address, got "10.0.0.0/33"',
  );
  throwsConfig(
    () => validateConfig({ admin: { allowFrom: ['localhost'] } }),
    'admin.allowFrom[0]',
    'admin.allowFrom[0]: expected CIDR like "10.0.0.0/8" or IP address, got "localhost"',
  );
  throwsConfig(() => validateConfig({ admin: { token: 'short' } }), 'admin.token', 'admin.token: expected string of at least 8 characters, got "short"');
});

test('other cross-field checks', () => {
  throwsConfig(
    () => validateConfig({ server: { httpPort: 9443 } }),
    'server.httpsPort',
    'server.httpsPort: expected a port different from server.httpPort, got 9443',
  );
  throwsConfig(
    () => validateConfig({ healthCheck: { healthyThreshold: 0 } }),
    'healthCheck.healthyThreshold',
    'healthCheck.healthyThreshold: expected integer >= 1, got 0',
  );
  throwsConfig(
    () => validateConfig({ loadBalancer: { strategy: 'random' } }),
    'loadBalancer.strategy',
    'loadBalancer.strategy: expected one of "round_robin", "weighted", "least_connections", "ip_hash", got "random"',
  );
  throwsConfig(
    () => validateConfig({ healthCheck: { expectStatus: '399-200' } }),
    'healthCheck.expectStatus',
    'healthCheck.expectStatus: expected status like "2xx", "200" or "200-399", got "399-200"',
  );
  throwsConfig(
    () => validateConfig({ tls: { certFile: join(dir, 'x.pem') } }),
    'tls.keyFile',
    'tls.keyFile: expected a key file path because tls.certFile is set, got nothing',
  );
  throwsConfig(() => validateConfig([]), 'config', 'config: expected object, got []');
});

test('cache section: defaults, sizes and durations, errors that name the field', () => {
  const c = validateConfig({});
  assert.deepEqual(c.cache, { enabled: false, maxSize: 256 * 1024 * 1024, maxEntrySize: 8 * 1024 * 1024, lockTimeoutMs: 5000 });
  const set = validateConfig({ cache: { enabled: true, maxSize: '1GiB', maxEntrySize: '512KiB', path: '/var/cache/quiclb/c.sqlite', lockTimeout: '2s' } });
  assert.deepEqual(set.cache, { enabled: true, maxSize: 1024 ** 3, maxEntrySize: 512 * 1024, path: '/var/cache/quiclb/c.sqlite', lockTimeoutMs: 2000 });
  throwsConfig(
    () => validateConfig({ cache: { maxSize: '10KiB' } }),
    'cache.maxSize',
    'cache.maxSize: expected size like "16KiB", "1MiB", "2.5MB" or integer bytes in 1MiB..16384GiB, got "10KiB"',
  );
  throwsConfig(
    () => validateConfig({ cache: { maxSize: '2MiB', maxEntrySize: '4MiB' } }),
    'cache.maxEntrySize',
    'cache.maxEntrySize: expected at most cache.maxSize (2MiB), got "4MiB"',
  );
  throwsConfig(() => validateConfig({ cache: { path: '' } }), 'cache.path', 'cache.path: expected file path, got ""');
  throwsConfig(() => validateConfig({ cache: { lockTimeout: 'soon' } }), 'cache.lockTimeout', 'cache.lockTimeout: expected duration like "500ms", "10s", "2m", "1h" or integer milliseconds, got "soon"');
  throwsConfig(() => validateConfig({ cache: { enable: true } }), 'cache.enable', 'cache.enable: unknown field');
});

test('cert and key must be readable files, named by field', () => {
  const cert = join(dir, 'cert.pem');
  const key = join(dir, 'key.pem');
  writeFileSync(cert, '-----BEGIN CERTIFICATE-----\n');
  writeFileSync(key, '-----BEGIN PRIVATE KEY-----\n');
  const c = validateConfig({ tls: { certFile: cert, keyFile: key } });
  assert.equal(c.tls.certFile, cert);
  assert.equal(c.tls.keyFile, key);

  const missing = join(dir, 'missing.pem');
  throwsConfig(
    () => validateConfig({ tls: { certFile: missing, keyFile: key } }),
    'tls.certFile',
    `tls.certFile: expected a readable file, got ${JSON.stringify(missing)} (ENOENT)`,
  );
  const aDir = join(dir, 'adir');
  mkdirSync(aDir);
  throwsConfig(
    () => validateConfig({ tls: { certFile: cert, keyFile: aDir } }),
    'tls.keyFile',
    `tls.keyFile: expected a readable file, got ${JSON.stringify(aDir)} (EISDIR)`,
  );
});

test('invalid JSON names the file, line and column', () => {
  const file = join(dir, 'config.json');
  writeFileSync(file, '{\n  "server": {\n    "httpPort": 8080,\n  }\n}\n');
  throwsConfig(() => loadConfig({ file, env: {} }), file, `${file}: invalid JSON at line 4 column 3: Expected double-quoted property name`);
  writeFileSync(file, '{\n  "server": }\n');
  throwsConfig(() => loadConfig({ file, env: {} }), file, `${file}: invalid JSON at line 2 column 13: Unexpected token '}'`);
  const missing = join(dir, 'nope.json');
  throwsConfig(() => loadConfig({ file: missing, env: {} }), missing, `${missing}: expected a readable config file, got ${JSON.stringify(missing)} (ENOENT)`);
});

test('a file is read, validated and keeps unset fields at their defaults', () => {
  const file = join(dir, 'ok.json');
  writeFileSync(file, JSON.stringify({ server: { httpPort: 8000 }, loadBalancer: { backendServers: [backend('m1', 8081)] } }));
  const c = loadConfig({ file, env: {} });
  assert.equal(c.server.httpPort, 8000);
  assert.equal(c.server.httpsPort, 9443);
  assert.deepEqual(c.loadBalancer.backendServers, [{ id: 'm1', protocol: 'http', host: '127.0.0.1', port: 8081, weight: 1, healthy: true, maxConnections: 0, group: 'default' }]);
});

test('env overrides are applied over the file', () => {
  const file = join(dir, 'env.json');
  writeFileSync(file, JSON.stringify({ server: { httpPort: 8000 }, loadBalancer: { backendServers: [backend('m1', 8081)] } }));
  const cert = join(dir, 'env-cert.pem');
  const key = join(dir, 'env-key.pem');
  writeFileSync(cert, 'c');
  writeFileSync(key, 'k');
  const c = loadConfig({
    file,
    env: {
      BIND_ADDRESS: '127.0.0.1:7000',
      BACKEND_SERVERS: 'http://10.0.0.1:8080, http://moodle-b,https://[::1]',
      SSL_CERT_PATH: cert,
      SSL_KEY_PATH: key,
      UNRELATED: 'x',
    },
  });
  assert.equal(c.server.bindAddress, '127.0.0.1');
  assert.equal(c.server.httpPort, 7000);
  assert.deepEqual(
    c.loadBalancer.backendServers.map((b) => [b.id, b.host, b.port, b.weight]),
    [
      ['backend-1', '10.0.0.1', 8080, 1],
      ['backend-2', 'moodle-b', 80, 1],
      ['backend-3', '::1', 443, 1],
    ],
  );
  assert.equal(c.tls.certFile, cert);
  assert.equal(c.tls.keyFile, key);

  const v6 = loadConfig({ env: { BIND_ADDRESS: '[::]:8443' } });
  assert.equal(v6.server.bindAddress, '::');
  assert.equal(v6.server.httpPort, 8443);
  const hostOnly = loadConfig({ env: { BIND_ADDRESS: '::1', BACKEND_SERVERS: '' } });
  assert.equal(hostOnly.server.bindAddress, '::1');
  assert.equal(hostOnly.server.httpPort, 8080);
  assert.deepEqual(hostOnly.loadBalancer.backendServers, []);
});

test('bad env values name the variable; values that parse are still checked by field', () => {
  throwsConfig(
    () => loadConfig({ env: { BACKEND_SERVERS: 'http://ok:80,foo' } }),
    'BACKEND_SERVERS[1]',
    'BACKEND_SERVERS[1]: expected URL like http://host:port, got "foo"',
  );
  throwsConfig(
    () => loadConfig({ env: { BACKEND_SERVERS: 'ftp://a:21' } }),
    'BACKEND_SERVERS[0]',
    'BACKEND_SERVERS[0]: expected URL like http://host:port, got "ftp://a:21"',
  );
  throwsConfig(
    () => loadConfig({ env: { BACKEND_SERVERS: 'http://a:80/moodle' } }),
    'BACKEND_SERVERS[0]',
    'BACKEND_SERVERS[0]: expected URL like http://host:port, got "http://a:80/moodle"',
  );
  throwsConfig(
    () => loadConfig({ env: { BIND_ADDRESS: '0.0.0.0:99999' } }),
    'BIND_ADDRESS',
    'BIND_ADDRESS: expected host, host:port or [v6]:port, got "0.0.0.0:99999"',
  );
  throwsConfig(() => loadConfig({ env: { BIND_ADDRESS: ':80' } }), 'BIND_ADDRESS', 'BIND_ADDRESS: expected host, host:port or [v6]:port, got ":80"');
  const missing = join(dir, 'no-cert.pem');
  const key = join(dir, 'k2.pem');
  writeFileSync(key, 'k');
  throwsConfig(
    () => loadConfig({ env: { SSL_CERT_PATH: missing, SSL_KEY_PATH: key } }),
    'tls.certFile',
    `tls.certFile: expected a readable file, got ${JSON.stringify(missing)} (ENOENT)`,
  );
  throwsConfig(
    () => loadConfig({ env: { BIND_ADDRESS: '127.0.0.1:9443' } }),
    'server.httpsPort',
    'server.httpsPort: expected a port different from server.httpPort, got 9443',
  );
});

test('toJson round-trips defaults and a config with every kind of field set', () => {
  const defaults = validateConfig({});
  assert.deepEqual(validateConfig(toJson(defaults)), defaults);
  const fromDoc = validateConfig(defaultConfigJson());
  assert.deepEqual(toJson(fromDoc), toJson(validateConfig(toJson(fromDoc))));

  const cert = join(dir, 'rt-cert.pem');
  const key = join(dir, 'rt-key.pem');
  writeFileSync(cert, 'c');
  writeFileSync(key, 'k');
  const c: Config = validateConfig({
    server: { httpPort: 80, httpsPort: 443, readTimeout: 1500, maxHeaderSize: 5000, maxBodySize: '100MiB', redirectHttpToHttps: true },
    tls: { certFile: cert, keyFile: key, stateDir: '/var/lib/quiclb' },
    quic: { enabled: false, idleTimeout: '90s', initialMaxData: 123_457, retryThreshold: 0 },
    loadBalancer: {
      strategy: 'least_connections',
      backendServers: [backend('a', 8081, { weight: 3, healthy: false, maxConnections: 50, group: 'web' }), backend('b', 8082)],
      routes: [{ host: 'files.example.org', pathPrefix: '/pluginfile.php', group: 'web' }],
      backendTimeout: '2m30s',
    },
    healthCheck: { interval: '1h', expectStatus: '200-399' },
    moodle: { dataRoot: '/var/moodledata', wwwRoot: 'https://moodle.example.org', proxyHeaders: ['x-real-ip'], enableCaching: true },
    cache: { maxSize: '64MiB', maxEntrySize: 1_000_001, path: '/var/cache/quiclb.sqlite', lockTimeout: '750ms' },
    admin: { allowFrom: ['10.1.2.3'], token: 'secret-token', port: 9000 },
    logging: { level: 'debug', format: 'pretty', accessLog: false },
  });
  const json = toJson(c);
  assert.equal((json.server as Record<string, unknown>).readTimeout, '1500ms');
  assert.equal((json.server as Record<string, unknown>).maxBodySize, '100MiB');
  assert.equal((json.loadBalancer as Record<string, unknown>).backendTimeout, '150s');
  assert.deepEqual(json.cache, { enabled: false, maxSize: '64MiB', maxEntrySize: 1_000_001, path: '/var/cache/quiclb.sqlite', lockTimeout: '750ms' });
  assert.ok(!('readTimeoutMs' in (json.server as Record<string, unknown>)));
  assert.deepEqual(validateConfig(json), c);
  assert.deepEqual(validateConfig(JSON.parse(JSON.stringify(json))), c);
});

test('compression: off by default, every field defaulted, sizes and media types normalised', () => {
  const c = validateConfig({}).compression;
  assert.equal(c.enabled, false);
  assert.deepEqual(c.encodings, ['br', 'zstd', 'gzip']);
  assert.equal(c.minSize, 1024);
  assert.deepEqual(c.level, { br: 4, zstd: 3, gzip: 6 });
  assert.ok(c.types.includes('text/html') && c.types.includes('image/svg+xml') && c.types.includes('application/json'));
  assert.ok(!c.types.some((t) => t.startsWith('image/png')));
  const set = validateConfig({ compression: { enabled: true, encodings: ['gzip'], minSize: '2KiB', types: ['Text/*', 'application/JSON'], level: { gzip: 9 } } }).compression;
  assert.deepEqual(set, { enabled: true, encodings: ['gzip'], minSize: 2048, types: ['text/*', 'application/json'], level: { br: 4, zstd: 3, gzip: 9 } });
  assert.deepEqual(toJson(validateConfig({ compression: { minSize: 2048 } })).compression, { ...toJson(validateConfig({})).compression as object, minSize: '2KiB' });
});

test('compression errors name the field', () => {
  throwsConfig(() => validateConfig({ compression: { level: { br: 12 } } }), 'compression.level.br', 'compression.level.br: expected integer 0..11, got 12');
  throwsConfig(() => validateConfig({ compression: { level: { zstd: 22 } } }), 'compression.level.zstd', 'compression.level.zstd: expected integer 1..19, got 22');
  throwsConfig(() => validateConfig({ compression: { level: { gzip: 0 } } }), 'compression.level.gzip', 'compression.level.gzip: expected integer 1..9, got 0');
  throwsConfig(() => validateConfig({ compression: { level: { deflate: 1 } } }), 'compression.level.deflate', 'compression.level.deflate: unknown field');
  throwsConfig(
    () => validateConfig({ compression: { encodings: ['br', 'deflate'] } }),
    'compression.encodings[1]',
    'compression.encodings[1]: expected one of "br", "zstd", "gzip", got "deflate"',
  );
  throwsConfig(() => validateConfig({ compression: { encodings: ['br', 'gzip', 'br'] } }), 'compression.encodings[2]', 'compression.encodings[2]: duplicate encoding "br"');
  throwsConfig(
    () => validateConfig({ compression: { encodings: [] } }),
    'compression.encodings',
    'compression.encodings: expected at least one of "br", "zstd", "gzip" (set compression.enabled to false for none), got []',
  );
  throwsConfig(
    () => validateConfig({ compression: { types: ['text/html; charset=utf-8'] } }),
    'compression.types[0]',
    'compression.types[0]: expected media type like "text/html" or "text/*" (no parameters), got "text/html; charset=utf-8"',
  );
  throwsConfig(() => validateConfig({ compression: { types: ['text/html', 'TEXT/HTML'] } }), 'compression.types[1]', 'compression.types[1]: duplicate media type "text/html"');
  throwsConfig(() => validateConfig({ compression: { minSize: '1x' } }), 'compression.minSize', 'compression.minSize: expected size like "16KiB", "1MiB", "2.5MB" or integer bytes in 0..2147483647, got "1x"');
});

// ---- FastCGI backends and the Moodle paths they need ------------------------------------------------

function moodleDirs(): { www: string; data: string } {
  const www = join(dir, 'moodle-www');
  const data = join(dir, 'moodledata');
  mkdirSync(www, { recursive: true });
  mkdirSync(data, { recursive: true });
  return { www, data };
}

test('FastCGI backends: a unix socket (host and port not needed) or host:port; protocol defaults to "http"', () => {
  const { www, data } = moodleDirs();
  const c = validateConfig({
    loadBalancer: {
      backendServers: [
        { id: 'fpm-a', protocol: 'fastcgi', socket: '/run/php/php8.2-fpm.sock' },
        { id: 'fpm-b', protocol: 'fastcgi', host: '10.0.0.12', port: 9000, maxConnections: 16 },
        backend('web', 8080),
      ],
    },
    moodle: { wwwRoot: www, dataRoot: data },
  });
  assert.deepEqual(c.loadBalancer.backendServers, [
    { id: 'fpm-a', protocol: 'fastcgi', host: '', port: 0, socket: '/run/php/php8.2-fpm.sock', weight: 1, healthy: true, maxConnections: 0, group: 'default' },
    { id: 'fpm-b', protocol: 'fastcgi', host: '10.0.0.12', port: 9000, weight: 1, healthy: true, maxConnections: 16, group: 'default' },
    { id: 'web', protocol: 'http', host: '127.0.0.1', port: 8080, weight: 1, healthy: true, maxConnections: 0, group: 'default' },
  ]);
  assert.equal(c.moodle.wwwRoot, www);
  // The socket backend is written back without its placeholder host and port, and round-trips.
  const json = toJson(c) as { loadBalancer: { backendServers: Array<Record<string, unknown>> } };
  assert.deepEqual(json.loadBalancer.backendServers[0], { id: 'fpm-a', protocol: 'fastcgi', socket: '/run/php/php8.2-fpm.sock', weight: 1, healthy: true, maxConnections: 0, group: 'default' });
  assert.deepEqual(validateConfig(JSON.parse(JSON.stringify(json))), c);
});

test('FastCGI backend field errors name the field', () => {
  const { www } = moodleDirs();
  const lb = (b: Record<string, unknown>) => ({ loadBalancer: { backendServers: [b] }, moodle: { wwwRoot: www } });
  throwsConfig(
    () => validateConfig(lb({ id: 'a', protocol: 'fcgi', socket: '/x.sock' })),
    'loadBalancer.backendServers[0].protocol',
    'loadBalancer.backendServers[0].protocol: expected one of "http", "fastcgi", got "fcgi"',
  );
  throwsConfig(
    () => validateConfig(lb({ id: 'a', protocol: 'fastcgi', socket: 'run/php.sock' })),
    'loadBalancer.backendServers[0].socket',
    'loadBalancer.backendServers[0].socket: expected absolute path of a unix socket, got "run/php.sock"',
  );
  throwsConfig(
    () => validateConfig(lb({ id: 'a', socket: '/run/php.sock' })),
    'loadBalancer.backendServers[0].socket',
    'loadBalancer.backendServers[0].socket: expected nothing for protocol "http" (a unix socket is for protocol "fastcgi"), got "/run/php.sock"',
  );
  throwsConfig(
    () => validateConfig(lb({ id: 'a', protocol: 'fastcgi', socket: '/run/php.sock', host: '10.0.0.1', port: 9000 })),
    'loadBalancer.backendServers[0].socket',
    'loadBalancer.backendServers[0].socket: expected either socket or host and port, got both ("/run/php.sock")',
  );
  throwsConfig(
    () => validateConfig(lb({ id: 'a', protocol: 'fastcgi', host: '10.0.0.1' })),
    'loadBalancer.backendServers[0].port',
    'loadBalancer.backendServers[0].port: expected integer 1..65535, got nothing',
  );
});

test('FastCGI needs moodle.wwwRoot as an existing directory; dataRoot, when set, must exist', () => {
  const { www, data } = moodleDirs();
  const fpm = { id: 'fpm', protocol: 'fastcgi', socket: '/run/php.sock' };
  throwsConfig(
    () => validateConfig({ loadBalancer: { backendServers: [backend('web', 80), fpm] }, moodle: { wwwRoot: 'https://moodle.example.org' } }),
    'moodle.wwwRoot',
    'moodle.wwwRoot: expected the absolute directory of Moodle\'s code because loadBalancer.backendServers[1] uses protocol "fastcgi", got "https://moodle.example.org"',
  );
  throwsConfig(
    () => validateConfig({ loadBalancer: { backendServers: [fpm] } }),
    'moodle.wwwRoot',
    'moodle.wwwRoot: expected the absolute directory of Moodle\'s code because loadBalancer.backendServers[0] uses protocol "fastcgi", got nothing',
  );
  const missing = join(dir, 'no-such-moodle');
  throwsConfig(
    () => validateConfig({ loadBalancer: { backendServers: [fpm] }, moodle: { wwwRoot: missing } }),
    'moodle.wwwRoot',
    `moodle.wwwRoot: expected an existing directory, got ${JSON.stringify(missing)} (ENOENT)`,
  );
  throwsConfig(
    () => validateConfig({ loadBalancer: { backendServers: [fpm] }, moodle: { wwwRoot: www, dataRoot: missing } }),
    'moodle.dataRoot',
    `moodle.dataRoot: expected an existing directory, got ${JSON.stringify(missing)} (ENOENT)`,
  );
  assert.equal(validateConfig({ loadBalancer: { backendServers: [fpm] }, moodle: { wwwRoot: www, dataRoot: data } }).moodle.dataRoot, data);
  // HTTP backends only: wwwRoot and dataRoot stay informational (not checked on this host).
  assert.equal(validateConfig({ moodle: { wwwRoot: '/srv/elsewhere', dataRoot: '/var/moodledata' } }).moodle.wwwRoot, '/srv/elsewhere');
});

test('moodle.wwwRoot is a URL or an absolute directory, and callers can tell which', async () => {
  const { wwwRootDirectory, wwwRootUrl } = await import('../../src/config/www-root.ts');
  const url = validateConfig({ moodle: { wwwRoot: 'https://moodle.example.org/sub' } }).moodle;
  assert.equal(wwwRootUrl(url), 'https://moodle.example.org/sub');
  assert.equal(wwwRootDirectory(url), undefined);
  const directory = validateConfig({ moodle: { wwwRoot: '/srv/moodle/public' } }).moodle;
  assert.equal(wwwRootDirectory(directory), '/srv/moodle/public');
  assert.equal(wwwRootUrl(directory), undefined);
  for (const bad of ['moodle.example.org', 'srv/moodle', 'https://', 'ftp://x']) {
    throwsConfig(
      () => validateConfig({ moodle: { wwwRoot: bad } }),
      'moodle.wwwRoot',
      `moodle.wwwRoot: expected URL like https://moodle.example.org or absolute directory path, got ${JSON.stringify(bad)}`,
    );
  }
});

test('moodle.phpFpmSocket: one FastCGI backend "php-fpm" when no backends are listed', () => {
  const { www } = moodleDirs();
  const c = validateConfig({ moodle: { phpFpmSocket: '/run/php/php8.2-fpm.sock', wwwRoot: www } });
  assert.deepEqual(c.loadBalancer.backendServers, [
    { id: 'php-fpm', protocol: 'fastcgi', host: '', port: 0, socket: '/run/php/php8.2-fpm.sock', weight: 1, healthy: true, maxConnections: 0, group: 'default' },
  ]);
  assert.deepEqual(validateConfig(toJson(c)), c, 'round-trips through check-config output');
  throwsConfig(
    () => validateConfig({ moodle: { phpFpmSocket: '/run/php/php8.2-fpm.sock' } }),
    'moodle.wwwRoot',
    'moodle.wwwRoot: expected the absolute directory of Moodle\'s code because moodle.phpFpmSocket is set, got nothing',
  );
  throwsConfig(
    () => validateConfig({ loadBalancer: { backendServers: [backend('web', 80)] }, moodle: { phpFpmSocket: '/run/php.sock', wwwRoot: www } }),
    'moodle.phpFpmSocket',
    'moodle.phpFpmSocket: expected nothing when loadBalancer.backendServers lists backends (add {"id":"php-fpm","protocol":"fastcgi","socket":"/run/php.sock"} there), got "/run/php.sock"',
  );
  throwsConfig(() => validateConfig({ moodle: { phpFpmSocket: 'php.sock' } }), 'moodle.phpFpmSocket', 'moodle.phpFpmSocket: expected absolute path of a unix socket, got "php.sock"');
});

test('moodle.xAccelRedirectPrefix, deniedPaths (Moodle\'s nginx list by default) and deniedPathStatus', () => {
  const c = validateConfig({});
  assert.equal(c.moodle.xAccelRedirectPrefix, '/dataroot/');
  assert.ok(c.moodle.deniedPaths.includes('/vendor/') && c.moodle.deniedPaths.includes('composer.json') && c.moodle.deniedPaths.includes('.lock'));
  assert.equal(c.moodle.deniedPathStatus, 404);
  const custom = validateConfig({ moodle: { xAccelRedirectPrefix: '/files/', deniedPaths: ['/secret/'], deniedPathStatus: 403 } });
  assert.deepEqual([custom.moodle.xAccelRedirectPrefix, custom.moodle.deniedPaths, custom.moodle.deniedPathStatus], ['/files/', ['/secret/'], 403]);
  assert.deepEqual(validateConfig({ moodle: { deniedPaths: [] } }).moodle.deniedPaths, []);
  throwsConfig(() => validateConfig({ moodle: { deniedPathStatus: 401 } }), 'moodle.deniedPathStatus', 'moodle.deniedPathStatus: expected 403 or 404, got 401');
  throwsConfig(() => validateConfig({ moodle: { xAccelRedirectPrefix: '/dataroot' } }), 'moodle.xAccelRedirectPrefix', 'moodle.xAccelRedirectPrefix: expected path starting and ending with "/", got "/dataroot"');
  throwsConfig(() => validateConfig({ moodle: { deniedPaths: ['/vendor/', ''] } }), 'moodle.deniedPaths[1]', 'moodle.deniedPaths[1]: expected non-empty string, got ""');
});
