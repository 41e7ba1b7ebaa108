// One cache for all shards: worker threads, each with its own connection to the same store file and the
// same CacheSharedState buffer, each running the test caching proxy (test/support/cache-proxy-worker.ts)
// in front of one real node:http origin.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { Worker } from 'node:worker_threads';
import { Agent, request } from 'undici';
import { prepareCacheStore } from '../../src/cache/cache.ts';
import { CacheSharedState } from '../../src/shared/cache-state.ts';
import { startOrigin, type Origin } from '../support/origin.ts';
import { tempSettings } from '../support/cache-fixtures.ts';

const WORKER = new URL('../support/cache-proxy-worker.ts', import.meta.url);
const agent = new Agent({ connections: 64, keepAliveTimeout: 1000 });
const closers: Array<() => Promise<unknown>> = [];
after(async () => {
  for (const c of closers.reverse()) await c();
});

async function startShards(origin: Origin, count: number, lockTimeoutMs = 5000): Promise<{ ports: number[]; shared: CacheSharedState }> {
  const settings = tempSettings({ lockTimeoutMs });
  const shared = new CacheSharedState();
  prepareCacheStore(settings, shared);
  const ports = await Promise.all(
    Array.from({ length: count }, async () => {
      const w = new Worker(WORKER, { workerData: { origin: origin.url, settings, sharedBuffer: shared.buffer } });
      const { port } = await new Promise<{ port: number }>((resolve, reject) => {
        w.once('message', resolve);
        w.once('error', reject);
      });
      closers.push(async () => {
        w.postMessage('close');
        await new Promise((r) => w.once('message', r));
        await w.terminate();
      });
      return port;
    }),
  );
  return { ports, shared };
}

// Every thread listens on its own port here, while quiclb's shards share one: the same Host keeps the key the same.
async function fetchText(port: number, path: string): Promise<string> {
  const r = await request(`http://127.0.0.1:${port}${path}`, { dispatcher: agent, headers: { host: 'moodle.example.edu' } });
  return r.body.text();
}

test('a response stored by one thread is read by another', async () => {
  const origin = await startOrigin((_req, res, n) => {
    res.writeHead(200, { 'cache-control': 'public, max-age=600', 'content-type': 'text/css' });
    res.end(`from origin ${n}`);
  });
  closers.push(() => origin.close());
  const { ports, shared } = await startShards(origin, 2);
  assert.equal(await fetchText(ports[0], '/theme/styles.php'), 'from origin 1');
  assert.equal(await fetchText(ports[1], '/theme/styles.php'), 'from origin 1');
  assert.equal(origin.count('/theme/styles.php'), 1);
  const s = shared.snapshot();
  assert.deepEqual([s.misses, s.stored, s.hits], [1, 1, 1], 'counters are shared by both threads');
});

test('coalescing: 50 concurrent misses across 2 threads make 1 backend request', async () => {
  const css = 'a{}'.repeat(10_000); // 30 KB, a typical Moodle stylesheet chunk
  const origin = await startOrigin((_req, res) => {
    setTimeout(() => {
      res.writeHead(200, { 'cache-control': 'public, max-age=600', 'content-type': 'text/css' });
      res.end(css);
    }, 300);
  });
  closers.push(() => origin.close());
  const { ports, shared } = await startShards(origin, 2);
  const bodies = await Promise.all(Array.from({ length: 50 }, (_, i) => fetchText(ports[i % 2], '/theme/styles.php/boost/1/all')));
  assert.ok(bodies.every((b) => b === css));
  assert.equal(origin.count('/theme/styles.php/boost/1/all'), 1);
  const s = shared.snapshot();
  assert.deepEqual([s.misses, s.hits, s.coalesced, s.lockTimeouts], [1, 49, 49, 0]);
});

test('coalescing: followers that wait past cache.lockTimeout go to the backend themselves', async () => {
  const origin = await startOrigin((_req, res) => {
    setTimeout(() => {
      res.writeHead(200, { 'cache-control': 'public, max-age=600' });
      res.end('slow');
    }, 1500);
  });
  closers.push(() => origin.close());
  const { ports, shared } = await startShards(origin, 2, 200);
  const bodies = await Promise.all(Array.from({ length: 4 }, (_, i) => fetchText(ports[i % 2], '/slow')));
  assert.deepEqual(bodies, ['slow', 'slow', 'slow', 'slow']);
  assert.equal(origin.count('/slow'), 4);
  // The lock lives as long as the wait (nginx's proxy_cache_lock_age): a follower that finds it expired
  // takes it over instead of timing out, so how many of the 3 timed out depends on who looked when.
  const s = shared.snapshot();
  assert.equal(s.misses, 4);
  assert.ok(s.lockTimeouts >= 1 && s.lockTimeouts <= 3, `lockTimeouts ${s.lockTimeouts}`);
});

test('an uncacheable answer releases the waiting requests together instead of one after another', async () => {
  let inFlight = 0;
  let maxInFlight = 0;
  const origin = await startOrigin((_req, res) => {
    maxInFlight = Math.max(maxInFlight, ++inFlight);
    setTimeout(() => {
      inFlight--;
      res.writeHead(200, { 'cache-control': 'private, max-age=0' });
      res.end('mine');
    }, 300);
  });
  closers.push(() => origin.close());
  const { ports, shared } = await startShards(origin, 2);
  await Promise.all(Array.from({ length: 10 }, (_, i) => fetchText(ports[i % 2], '/my/')));
  assert.equal(origin.count('/my/'), 10);
  // Taking the lock in turn would keep the backend at one request at a time; the pass mark lets the 9
  // waiters go at once.
  assert.ok(maxInFlight >= 2, `at most ${maxInFlight} request(s) at the backend at once`);
  assert.equal(shared.snapshot().lockTimeouts, 0);
});

test('8 threads, 80 concurrent requests for one stylesheet: the backend runs once', async () => {
  const origin = await startOrigin((_req, res) => {
    setTimeout(() => {
      res.writeHead(200, { 'cache-control': 'public, max-age=604800, immutable', etag: '"rev1"', 'content-type': 'text/css' });
      res.end('.x{}'.repeat(5000));
    }, 200);
  });
  closers.push(() => origin.close());
  const { ports } = await startShards(origin, 8);
  await Promise.all(Array.from({ length: 80 }, (_, i) => fetchText(ports[i % 8], '/theme/styles.php/boost/1/all')));
  assert.equal(origin.count('/theme/styles.php/boost/1/all'), 1);
});
