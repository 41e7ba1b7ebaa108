// The dashboard's recent latency: the difference of two cumulative merges is the requests in between.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LatencyRecorder } from '../../src/admin/latency.ts';
import { RecentLatencyWindow } from '../../src/admin/dashboard/recent-latency.ts';

test('percentiles of the last window only, windows of at least ~1 s, stale bases dropped', () => {
  const shard = new LatencyRecorder();
  const w = new RecentLatencyWindow();
  for (let i = 0; i < 1000; i++) shard.record(0, 100); // an old slow period: 100 ms
  const t0 = 1_000_000;
  let r = w.observe(LatencyRecorder.merge([shard.snapshot()], 2), t0);
  assert.equal(r.windowMs, 0);
  assert.deepEqual(r.backends[0], { p50: 0, p99: 0, count: 0 });

  for (let i = 0; i < 50; i++) shard.record(0, 2); // now fast: 2 ms
  r = w.observe(LatencyRecorder.merge([shard.snapshot()], 2), t0 + 1000);
  assert.equal(r.windowMs, 1000);
  assert.equal(r.backends[0].count, 50);
  assert.ok(Math.abs(r.backends[0].p50 - 2) < 0.01 && Math.abs(r.backends[0].p99 - 2) < 0.01, JSON.stringify(r.backends[0]));
  assert.equal(r.backends[1].count, 0);

  // A second tab 200 ms later gets a shorter window over the same base; the base stays.
  shard.record(0, 7);
  r = w.observe(LatencyRecorder.merge([shard.snapshot()], 2), t0 + 1200);
  assert.equal(r.windowMs, 200);
  assert.equal(r.backends[0].count, 1);
  r = w.observe(LatencyRecorder.merge([shard.snapshot()], 2), t0 + 2000);
  assert.equal(r.windowMs, 1000);
  assert.equal(r.backends[0].count, 1);

  // After a long pause the old base no longer describes "now".
  r = w.observe(LatencyRecorder.merge([shard.snapshot()], 2), t0 + 60_000);
  assert.equal(r.windowMs, 0);
  // A shard restart (fewer requests than the base) restarts the window instead of going negative.
  r = w.observe(LatencyRecorder.merge([new LatencyRecorder().snapshot()], 2), t0 + 61_000);
  assert.deepEqual(r.backends[0], { p50: 0, p99: 0, count: 0 });
});
