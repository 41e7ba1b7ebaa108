// Active and passive health with load running: no idempotent request fails while a backend's health
// check turns 503, or while a backend dies outright; traffic returns when it recovers.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { startPhpBackends } from '../support/php-backends.ts';
import type { PhpBackendSet } from '../support/php-backends.ts';
import { startQuiclb } from '../support/quiclb-process.ts';
import type { QuiclbProcess } from '../support/quiclb-process.ts';
import { getJson } from '../support/http-client.ts';

let php: PhpBackendSet;
let lb: QuiclbProcess;

before(async () => {
  php = await startPhpBackends(2);
  const backendServers = php.backends.map((b) => ({ id: b.id, host: b.host, port: b.port }));
  lb = await startQuiclb({
    config: {
      loadBalancer: { strategy: 'round_robin', sessionPersistence: false, backendServers },
      healthCheck: { interval: '250ms', timeout: '250ms', healthyThreshold: 2, unhealthyThreshold: 2 },
    },
    workers: 2,
  });
});

after(async () => {
  await lb?.stop();
  await php?.stop();
});

/** Runs `concurrency` request loops until stop() and records every answer. */
function load(concurrency: number) {
  let running = true;
  const results: Array<{ status: number; backend?: string; at: number }> = [];
  const loops = Array.from({ length: concurrency }, async () => {
    while (running) {
      try {
        const res = await getJson(`http://127.0.0.1:${lb.httpPort}/index.php`);
        results.push({ status: res.status, backend: res.body?.backend, at: Date.now() });
      } catch (err) {
        results.push({ status: -1, at: Date.now() });
      }
    }
  });
  return {
    results,
    async stop() {
      running = false;
      await Promise.all(loops);
    },
  };
}

async function waitFor(pred: () => boolean | Promise<boolean>, timeoutMs: number, what: string) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await pred()) return;
    await sleep(50);
  }
  throw new Error(`timed out: ${what}`);
}

test('health check turning 503 moves traffic away with no failed request, and recovery brings it back', async () => {
  const [b1] = php.backends;
  const run = load(4);
  await sleep(500);
  await b1.setHealthy(false);
  await lb.waitForLog((e) => e.backend === b1.id && /down|unhealthy/i.test(String(e.msg)), 5000);
  const markedDownAt = Date.now();
  await sleep(1000);
  await b1.setHealthy(true);
  await lb.waitForLog((e) => e.backend === b1.id && /up|healthy|recovered/i.test(String(e.msg)) && !/unhealthy/i.test(String(e.msg)), 5000);
  const recoveredAt = Date.now();
  await sleep(800);
  await run.stop();
  assert.deepEqual(run.results.filter((r) => r.status !== 200), [], 'every request succeeded');
  const whileDown = run.results.filter((r) => r.at > markedDownAt + 100 && r.at < recoveredAt);
  assert.ok(whileDown.length > 20);
  assert.equal(whileDown.filter((r) => r.backend === b1.id).length, 0, 'nothing routed to the unhealthy backend');
  const after = run.results.filter((r) => r.at > recoveredAt + 200);
  assert.ok(after.some((r) => r.backend === b1.id), 'traffic returned after recovery');
});

test('a backend that dies under load costs no idempotent request; it is marked down and recovers', async () => {
  const [, b2] = php.backends;
  const run = load(4);
  await sleep(400);
  await b2.stop();
  await sleep(1500);
  const stats = await getJson(`http://127.0.0.1:${lb.httpPort}/stats`);
  const entry = stats.body.backends.find((b: { id: string }) => b.id === b2.id);
  assert.equal(entry.healthy, false);
  await b2.start();
  await waitFor(async () => {
    const s = await getJson(`http://127.0.0.1:${lb.httpPort}/stats`);
    return s.body.backends.find((b: { id: string }) => b.id === b2.id).healthy === true;
  }, 5000, 'backend 2 healthy again');
  await sleep(500);
  await run.stop();
  assert.deepEqual(run.results.filter((r) => r.status !== 200), [], 'every GET succeeded');
  assert.ok(run.results.slice(-20).some((r) => r.backend === b2.id));
});

test('all backends down: 503 with a clear body', async () => {
  for (const b of php.backends) await b.setHealthy(false);
  await waitFor(async () => (await getJson(`http://127.0.0.1:${lb.httpPort}/index.php`)).status === 503, 5000, '503');
  const res = await getJson(`http://127.0.0.1:${lb.httpPort}/index.php`);
  assert.equal(res.status, 503);
  assert.match(String(res.body), /no healthy backend/);
  for (const b of php.backends) await b.setHealthy(true);
});
