import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { validateConfig } from '../../src/config/load.ts';
import { UNBOUNDED_POOL_CONNECTIONS, fastCgiPoolOptions } from '../../src/fastcgi/from-config.ts';

test('pool options from a configured FastCGI backend: target, maxConnections split across shards (kept alive only then), timeouts', () => {
  const www = mkdtempSync(join(tmpdir(), 'quiclb-www-'));
  try {
    const c = validateConfig({
      loadBalancer: {
        backendServers: [
          { id: 'fpm-a', protocol: 'fastcgi', socket: '/run/php/php8.2-fpm.sock', maxConnections: 10 },
          { id: 'fpm-b', protocol: 'fastcgi', host: '10.0.0.12', port: 9000 },
        ],
        connectTimeout: '2s',
        backendTimeout: '90s',
      },
      moodle: { wwwRoot: www },
    });
    const a = fastCgiPoolOptions(c.loadBalancer.backendServers[0], c, 4);
    assert.deepEqual(a.target, { socketPath: '/run/php/php8.2-fpm.sock' });
    assert.equal(a.maxConnections, 3);
    assert.equal(a.keepAlive, true);
    assert.equal(a.connectTimeoutMs, 2000);
    assert.equal(a.queueTimeoutMs, 2000);
    assert.equal(a.headersTimeoutMs, 90_000);
    const b = fastCgiPoolOptions(c.loadBalancer.backendServers[1], c, 4);
    assert.deepEqual(b.target, { host: '10.0.0.12', port: 9000 });
    assert.equal(b.maxConnections, UNBOUNDED_POOL_CONNECTIONS);
    assert.equal(b.keepAlive, false, 'no idle connection may hold a php-fpm child when nothing bounds them');
  } finally {
    rmSync(www, { recursive: true, force: true });
  }
});
