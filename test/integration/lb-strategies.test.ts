// Distribution per strategy through the real quiclb binary to real nginx + php-fpm backends.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startPhpBackends } from '../support/php-backends.ts';
import type { PhpBackendSet } from '../support/php-backends.ts';
import { startQuiclb } from '../support/quiclb-process.ts';
import { getJson, countBy } from '../support/http-client.ts';

let php: PhpBackendSet;
before(async () => {
  php = await startPhpBackends(3);
});
after(async () => {
  await php?.stop();
});

async function distribution(strategy: string, weights: number[], requests: number, concurrency = 1) {
  const backendServers = php.backends.map((b, i) => ({ id: b.id, host: b.host, port: b.port, weight: weights[i] }));
  const lb = await startQuiclb({ config: { loadBalancer: { strategy, sessionPersistence: false, backendServers } }, workers: 1 });
  try {
    const hits: string[] = [];
    let next = 0;
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        while (next < requests) {
          next++;
          const res = await getJson(`http://127.0.0.1:${lb.httpPort}/index.php`);
          assert.equal(res.status, 200, `${res.status}: ${JSON.stringify(res.body)}`);
          hits.push(res.body.backend);
        }
      }),
    );
    return countBy(hits, (h) => h);
  } finally {
    await lb.stop();
  }
}

test('round_robin spreads evenly', async () => {
  const counts = await distribution('round_robin', [1, 1, 1], 300);
  for (const b of php.backends) assert.equal(counts.get(b.id), 100);
});

test('weighted follows 3:2:1', async () => {
  const counts = await distribution('weighted', [3, 2, 1], 600);
  assert.deepEqual(php.backends.map((b) => counts.get(b.id)), [300, 200, 100]);
});

test('least_connections uses every backend under concurrency', async () => {
  const counts = await distribution('least_connections', [1, 1, 1], 300, 6);
  for (const b of php.backends) assert.ok((counts.get(b.id) ?? 0) >= 40, `${b.id}: ${counts.get(b.id)}`);
});

test('ip_hash keeps one client address on one backend', async () => {
  const counts = await distribution('ip_hash', [1, 1, 1], 60);
  assert.equal(counts.size, 1);
  assert.equal([...counts.values()][0], 60);
});
