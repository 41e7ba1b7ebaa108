import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LatencyRecorder, summarizeMs } from '../../src/admin/latency.ts';

test('merging two recorders gives the combined count and percentiles', () => {
  const a = new LatencyRecorder();
  const b = new LatencyRecorder();
  // Shard a: backend 0 answers in 1..100 ms; shard b: backend 0 in 101..200 ms, backend 2 once.
  for (let ms = 1; ms <= 100; ms++) a.record(0, ms);
  for (let ms = 101; ms <= 200; ms++) b.record(0, ms);
  b.record(2, 0.25);
  const merged = LatencyRecorder.merge([a.snapshot(), b.snapshot()], 4);
  assert.equal(merged.length, 4, 'padded to backendCount');
  assert.equal(merged[0].totalCount, 200);
  assert.equal(merged[1].totalCount, 0);
  assert.equal(merged[2].totalCount, 1);
  const s = summarizeMs(merged[0]);
  assert.equal(s.count, 200);
  // 3 significant digits: within 0.1 % of the exact order statistic.
  assert.ok(Math.abs(s.p50 - 100) <= 0.1, `p50 ${s.p50}`);
  assert.ok(Math.abs(s.p90 - 180) <= 0.2, `p90 ${s.p90}`);
  assert.ok(Math.abs(s.p99 - 198) <= 0.2, `p99 ${s.p99}`);
  assert.ok(Math.abs(s.max - 200) <= 0.2, `max ${s.max}`);
  // Each shard alone would say otherwise: the merge really combined them.
  assert.ok(summarizeMs(LatencyRecorder.merge([a.snapshot()])[0]).p50 < 51);
  const sub = summarizeMs(merged[2]);
  assert.ok(Math.abs(sub.p50 - 0.25) < 0.001, 'sub-millisecond values keep their resolution');
});

test('empty snapshots and out-of-range values', () => {
  const r = new LatencyRecorder();
  assert.deepEqual(r.snapshot(), []);
  r.record(1, 10 * 60 * 1000);
  r.record(1, -5);
  const snap = r.snapshot();
  assert.equal(snap[0], '');
  const merged = LatencyRecorder.merge([snap, []], 2);
  assert.equal(merged[1].totalCount, 2);
  assert.ok(summarizeMs(merged[1]).max <= 300_000 * 1.001, 'clamped to 5 min');
  assert.deepEqual(summarizeMs(merged[0]), { p50: 0, p90: 0, p99: 0, p999: 0, max: 0, count: 0 });
});
