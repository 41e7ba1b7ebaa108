import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Worker } from 'node:worker_threads';
import { SessionTable, PROBE_WINDOW } from '../../src/balancer/session-table.ts';

const MODULE_URL = new URL('../../src/balancer/session-table.ts', import.meta.url).href;

/** Runs `body` in a real worker thread with `table` = new SessionTable(sharedBuffer); resolves its result. */
function inWorker(buffer: SharedArrayBuffer, body: string, data: unknown = null): Promise<unknown> {
  const code = `
    const { workerData, parentPort } = require('node:worker_threads');
    import(workerData.moduleUrl).then(({ SessionTable }) => {
      const table = new SessionTable(workerData.buffer);
      const data = workerData.data;
      parentPort.postMessage((() => { ${body} })());
    });`;
  return new Promise((resolve, reject) => {
    const w = new Worker(code, { eval: true, workerData: { moduleUrl: MODULE_URL, buffer, data } });
    const timer = setTimeout(() => {
      void w.terminate();
      reject(new Error('worker timed out'));
    }, 10_000);
    w.once('message', (m) => {
      clearTimeout(timer);
      void w.terminate();
      resolve(m);
    });
    w.once('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
  });
}

test('remember, lookup and forget in one thread', () => {
  const t = new SessionTable(undefined, 1024);
  assert.equal(t.lookup('abc'), undefined);
  t.remember('abc', 3);
  t.remember('def', 0);
  assert.equal(t.lookup('abc'), 3);
  assert.equal(t.lookup('def'), 0);
  t.remember('abc', 7); // re-pinned after a failover
  assert.equal(t.lookup('abc'), 7);
  t.forget('abc');
  assert.equal(t.lookup('abc'), undefined);
  assert.equal(t.lookup('def'), 0);
});

test('entries written in a worker thread are seen here, and the other way round', async () => {
  const t = new SessionTable(undefined, 4096);
  t.remember('from-main', 5);
  const seen = await inWorker(
    t.buffer,
    `table.remember('from-worker', 9);
     for (let i = 0; i < 1000; i++) table.remember('w' + i, i % 7);
     return { mainEntry: table.lookup('from-main'), capacity: table.capacity };`,
  );
  assert.deepEqual(seen, { mainEntry: 5, capacity: 4096 });
  assert.equal(t.lookup('from-worker'), 9);
  let found = 0;
  for (let i = 0; i < 1000; i++) if (t.lookup('w' + i) === i % 7) found++;
  assert.ok(found >= 990, `only ${found} of 1000 worker entries found`);
});

test('concurrent writers and a reader in three workers never see a torn entry', async () => {
  // 2 x 600 keys in 256 slots: the writers constantly evict each other's entries in shared windows while
  // a third thread reads. Each worker runs for a fixed time, not a fixed count, so they surely overlap.
  const t = new SessionTable(undefined, 256);
  const writer = `
    const end = Date.now() + 400;
    while (Date.now() < end)
      for (let i = 0; i < 600; i++) table.remember(data.prefix + i, (i + data.shift) % 11);
    return 0;`;
  const reader = `
    let wrong = 0, hits = 0;
    const end = Date.now() + 400;
    while (Date.now() < end)
      for (let i = 0; i < 600; i++)
        for (const [prefix, shift] of [['a', 0], ['b', 5]]) {
          const v = table.lookup(prefix + i);
          if (v === undefined) continue;
          hits++;
          if (v !== (i + shift) % 11) wrong++;
        }
    return { wrong, hits };`;
  const [, , seen] = await Promise.all([
    inWorker(t.buffer, writer, { prefix: 'a', shift: 0 }),
    inWorker(t.buffer, writer, { prefix: 'b', shift: 5 }),
    inWorker(t.buffer, reader),
  ]);
  const { wrong, hits } = seen as { wrong: number; hits: number };
  assert.equal(wrong, 0, `${wrong} torn reads out of ${hits} hits`);
  assert.ok(hits > 1000, `reader saw only ${hits} hits`);
  // And whatever survived maps each key to its own backend.
  let present = 0;
  for (let i = 0; i < 600; i++) {
    for (const [prefix, shift] of [['a', 0], ['b', 5]] as const) {
      const v = t.lookup(prefix + i);
      if (v === undefined) continue;
      present++;
      assert.equal(v, (i + shift) % 11, `${prefix}${i}`);
    }
  }
  assert.ok(present > 100 && present <= t.capacity, `${present} entries survived`);
  assert.ok(t.stats().evictions > 0);
});

test('capacity bound: 10x capacity inserts keep memory fixed and recent entries findable', () => {
  let clock = 1_700_000_000;
  const t = new SessionTable(undefined, 1024, () => clock);
  const bytes = t.buffer.byteLength;
  const n = t.capacity * 10;
  for (let i = 0; i < n; i++) {
    t.remember(`sess-${i}`, i % 4);
    if (i % 100 === 0) clock++;
  }
  assert.equal(t.buffer.byteLength, bytes);
  assert.equal(bytes, SessionTable.bytesFor(1024));
  // The most recent entries survive: the oldest in each probe window is evicted first.
  let recent = 0;
  for (let i = n - 200; i < n; i++) if (t.lookup(`sess-${i}`) === i % 4) recent++;
  assert.ok(recent >= 195, `only ${recent} of the last 200 found`);
  // And most of the first ones are gone, with the evictions counted.
  let old = 0;
  for (let i = 0; i < 1000; i++) if (t.lookup(`sess-${i}`) !== undefined) old++;
  assert.ok(old < 50, `${old} of the first 1000 still present`);
  const stats = t.stats();
  assert.ok(stats.evictions >= n - t.capacity, `evictions ${stats.evictions}`);
  assert.equal(stats.lostWrites, 0);
});

test('a hot probe window evicts its least recently written entry', () => {
  const t = new SessionTable(undefined, 8); // capacity == PROBE_WINDOW: every key shares one window
  assert.equal(t.capacity, PROBE_WINDOW);
  for (let i = 0; i < 8; i++) t.remember(`k${i}`, i);
  t.remember('k0', 1); // k0 re-pinned: now the most recently written
  t.remember('new', 2);
  assert.equal(t.lookup('k1'), undefined, 'k1 was the oldest');
  assert.equal(t.lookup('k0'), 1);
  assert.equal(t.lookup('new'), 2);
});

test('adopting a buffer that is not a session table fails with a stable code', () => {
  assert.throws(() => new SessionTable(new SharedArrayBuffer(1024)), { code: 'QUICLB_SESSION_TABLE_BUFFER' });
  assert.throws(() => new SessionTable(undefined, 3), { code: 'QUICLB_SESSION_TABLE_CAPACITY' });
});

test('capacity rounds up to a power of two', () => {
  assert.equal(new SessionTable(undefined, 1000).capacity, 1024);
  assert.equal(new SessionTable().capacity, 65536);
});
