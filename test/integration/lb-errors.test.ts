// What clients see when things go wrong: 504 on a backend timeout, 502 on a refused backend (POST is not
// retried), 413 over maxBodySize, and the HTTP -> HTTPS redirect.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { request } from 'undici';
import { startPhpBackends } from '../support/php-backends.ts';
import type { PhpBackendSet } from '../support/php-backends.ts';
import { startQuiclb } from '../support/quiclb-process.ts';
import { getJson } from '../support/http-client.ts';

let php: PhpBackendSet;
before(async () => {
  php = await startPhpBackends(1);
});
after(async () => {
  await php?.stop();
});

async function closedPort(): Promise<number> {
  const srv = net.createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
  const port = (srv.address() as net.AddressInfo).port;
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}

test('a backend slower than backendTimeout answers 504 and the log names the backend', async () => {
  const b = php.backends[0];
  const lb = await startQuiclb({
    config: { loadBalancer: { backendTimeout: '300ms', backendServers: [{ id: b.id, host: b.host, port: b.port }] }, healthCheck: { enabled: false } },
    workers: 1,
  });
  try {
    const res = await getJson(`http://127.0.0.1:${lb.httpPort}/slow.php?ms=1500`);
    assert.equal(res.status, 504);
    assert.match(String(res.body), new RegExp(`backend ${b.id} did not answer in time`));
    await lb.waitForLog((e) => e.backend === b.id && e.kind === 'timeout');
  } finally {
    await lb.stop();
  }
});

test('a refused backend: GET fails over to the live one, POST answers 502 with the backend id', async () => {
  const b = php.backends[0];
  const dead = await closedPort();
  const lb = await startQuiclb({
    config: {
      loadBalancer: {
        strategy: 'round_robin',
        sessionPersistence: false,
        backendServers: [{ id: 'dead', host: '127.0.0.1', port: dead }, { id: b.id, host: b.host, port: b.port }],
      },
      healthCheck: { enabled: false, passiveFailureThreshold: 1000 },
    },
    workers: 1,
  });
  try {
    const gets = await Promise.all(Array.from({ length: 6 }, () => getJson(`http://127.0.0.1:${lb.httpPort}/index.php`)));
    assert.deepEqual(gets.map((g) => g.status), [200, 200, 200, 200, 200, 200]);
    const statuses: number[] = [];
    for (let i = 0; i < 4; i++) {
      const res = await request(`http://127.0.0.1:${lb.httpPort}/upload.php`, { method: 'POST', body: 'x'.repeat(100) });
      statuses.push(res.statusCode);
      const text = await res.body.text();
      if (res.statusCode === 502) assert.match(text, /backend dead could not be reached \(ECONNREFUSED\)/);
    }
    assert.ok(statuses.includes(502), `POST to the dead backend is not retried: ${statuses}`);
    assert.ok(statuses.includes(200));
    const stats = await getJson(`http://127.0.0.1:${lb.httpPort}/stats`);
    assert.ok(stats.body.backends.find((x: { id: string }) => x.id === 'dead').failovers >= 1);
  } finally {
    await lb.stop();
  }
});

test('maxBodySize answers 413 before contacting the backend; redirectHttpToHttps answers 308', async () => {
  const b = php.backends[0];
  const lb = await startQuiclb({
    config: { server: { maxBodySize: '1KiB', redirectHttpToHttps: true }, loadBalancer: { backendServers: [{ id: b.id, host: b.host, port: b.port }] } },
    workers: 1,
  });
  try {
    const big = await request(`https://127.0.0.1:${lb.httpsPort}/upload.php`, {
      method: 'POST',
      body: Buffer.alloc(4096),
      dispatcher: new (await import('undici')).Agent({ connect: { rejectUnauthorized: false } }),
    });
    assert.equal(big.statusCode, 413);
    await big.body.dump();
    const redirect = await request(`http://127.0.0.1:${lb.httpPort}/course/view.php?id=2`);
    assert.equal(redirect.statusCode, 308);
    assert.equal(redirect.headers.location, `https://127.0.0.1:${lb.httpsPort}/course/view.php?id=2`);
    await redirect.body.dump();
    // Admin endpoints stay reachable over plain HTTP for monitors.
    assert.equal((await getJson(`http://127.0.0.1:${lb.httpPort}/health`)).status, 200);
  } finally {
    await lb.stop();
  }
});
