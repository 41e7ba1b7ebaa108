// Management endpoints through the real binary: contents, Prometheus format, and access control by
// source address and bearer token. Also the Alt-Svc advertisement and protocol negotiation on TCP.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startPhpBackends } from '../support/php-backends.ts';
import type { PhpBackendSet } from '../support/php-backends.ts';
import { startQuiclb } from '../support/quiclb-process.ts';
import { freePort } from '../../bench/lib/procs.ts';
import { getJson, execFileP, insecureAgent } from '../support/http-client.ts';

let php: PhpBackendSet;
before(async () => {
  php = await startPhpBackends(2);
});
after(async () => {
  await php?.stop();
});

const backends = () => php.backends.map((b) => ({ id: b.id, host: b.host, port: b.port }));

test('/health, /stats, /metrics and /api/test answer loopback clients by default', async () => {
  const lb = await startQuiclb({ config: { loadBalancer: { backendServers: backends() } } });
  try {
    for (let i = 0; i < 6; i++) await getJson(`http://127.0.0.1:${lb.httpPort}/index.php`);
    await getJson(`https://127.0.0.1:${lb.httpsPort}/index.php`, { dispatcher: insecureAgent });
    const health = await getJson(`http://127.0.0.1:${lb.httpPort}/health`);
    assert.equal(health.status, 200);
    assert.equal(health.body.backends.length, 2);
    const stats = await getJson(`http://127.0.0.1:${lb.httpPort}/stats`);
    assert.equal(stats.status, 200);
    const total = stats.body.backends.reduce((n: number, b: { requests: number }) => n + b.requests, 0);
    assert.ok(total >= 7, `requests counted: ${total}`);
    assert.ok(stats.body.protocols['HTTP/1.1'] >= 6);
    assert.ok(stats.body.backends.some((b: { latencyMs: { count: number } }) => b.latencyMs.count > 0));
    assert.equal(stats.body.shards.length, 2);
    const metrics = await getJson(`http://127.0.0.1:${lb.httpPort}/metrics`);
    assert.match(String(metrics.headers['content-type']), /text\/plain/);
    assert.match(metrics.body, /^# TYPE quiclb_backend_requests_total counter$/m);
    assert.match(metrics.body, new RegExp(`quiclb_backend_up\\{backend="${php.backends[0].id}"\\} 1`));
    const api = await getJson(`http://127.0.0.1:${lb.httpPort}/api/test`);
    assert.equal(api.body.ok, true);
  } finally {
    await lb.stop();
  }
});

test('admin endpoints refuse a source outside allowFrom with 403', async () => {
  const lb = await startQuiclb({ config: { loadBalancer: { backendServers: backends() }, admin: { allowFrom: ['10.0.0.0/8'] } } });
  try {
    for (const path of ['/stats', '/metrics', '/health']) {
      const res = await getJson(`http://127.0.0.1:${lb.httpPort}${path}`);
      assert.equal(res.status, 403, path);
    }
  } finally {
    await lb.stop();
  }
});

test('admin endpoints need the bearer token when one is configured', async () => {
  const token = 'sekrit-token-123';
  const lb = await startQuiclb({ config: { loadBalancer: { backendServers: backends() }, admin: { token } } });
  try {
    assert.equal((await getJson(`http://127.0.0.1:${lb.httpPort}/stats`)).status, 401);
    assert.equal((await getJson(`http://127.0.0.1:${lb.httpPort}/stats`, { headers: { authorization: 'Bearer wrong-token-000' } })).status, 401);
    assert.equal((await getJson(`http://127.0.0.1:${lb.httpPort}/stats`, { headers: { authorization: `Bearer ${token}` } })).status, 200);
  } finally {
    await lb.stop();
  }
});

test('TLS: ALPN h2 and http/1.1, TLS 1.1 refused, Alt-Svc advertises h3, X-Forwarded-* set', async () => {
  const lb = await startQuiclb({ config: { loadBalancer: { backendServers: backends() } } });
  try {
    const url = `https://127.0.0.1:${lb.httpsPort}/index.php`;
    const h2 = await execFileP('curl', ['-sk', '--http2', '-D', '-', '-w', '\nproto=%{http_version}', url]);
    assert.match(h2.stdout, /proto=2$/);
    assert.match(h2.stdout, /^alt-svc: h3=":\d+"; ma=86400/im);
    const body = JSON.parse(h2.stdout.slice(h2.stdout.indexOf('{'), h2.stdout.lastIndexOf('}') + 1));
    assert.equal(body.headers['X-Forwarded-Proto'] ?? body.headers['x-forwarded-proto'], 'https');
    assert.match(String(body.headers['X-Forwarded-For'] ?? body.headers['x-forwarded-for']), /127\.0\.0\.1/);
    const h1 = await execFileP('curl', ['-sk', '--http1.1', '-o', '/dev/null', '-w', '%{http_version}', url]);
    assert.equal(h1.stdout, '1.1');
    const old = await execFileP('curl', ['-sk', '--tlsv1.1', '--tls-max', '1.1', '-o', '/dev/null', '-w', '%{http_code}', url]).catch((e) => e);
    assert.notEqual(old.code ?? 0, 0, 'TLS 1.1 handshake must fail');
  } finally {
    await lb.stop();
  }
});

test('SIGTERM drains an in-flight request and exits 0', async () => {
  const lb = await startQuiclb({ config: { loadBalancer: { backendServers: backends() } } });
  const slow = getJson(`http://127.0.0.1:${lb.httpPort}/slow.php?ms=800`);
  await new Promise((r) => setTimeout(r, 200));
  const code = lb.stop('SIGTERM');
  const res = await slow;
  assert.equal(res.status, 200);
  assert.equal(await code, 0);
});

test('admin.port serves the admin endpoints only', async () => {
  const adminPort = await freePort();
  const lb = await startQuiclb({ config: { loadBalancer: { backendServers: backends() }, admin: { port: adminPort } } });
  try {
    const stats = await getJson(`http://127.0.0.1:${adminPort}/stats`);
    assert.equal(stats.status, 200);
    assert.equal(stats.body.backends.length, 2);
    const other = await getJson(`http://127.0.0.1:${adminPort}/index.php`);
    assert.equal(other.status, 404);
    assert.equal((await getJson(`http://127.0.0.1:${lb.httpPort}/index.php`)).status, 200);
  } finally {
    await lb.stop();
  }
});
