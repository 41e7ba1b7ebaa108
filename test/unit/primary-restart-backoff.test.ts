import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CrashBackoff, DEFAULT_RESTART_POLICY } from '../../src/primary/restart-backoff.ts';

test('a crash streak climbs the steps and stays on the last', () => {
  const b = new CrashBackoff();
  assert.deepEqual([0, 200, 50, 10, 0, 0].map((ran) => b.onCrash(ran)), [100, 500, 1000, 5000, 5000, 5000]);
  assert.equal(b.streak, 6);
});

test('a shard that ran healthyAfterMs starts again from the first step', () => {
  const b = new CrashBackoff({ backoffMs: [10, 20, 40], healthyAfterMs: 1000 });
  assert.deepEqual([0, 0, 0, 0].map((ran) => b.onCrash(ran)), [10, 20, 40, 40]);
  assert.equal(b.onCrash(999), 40, 'just short of healthy: the streak goes on');
  assert.equal(b.onCrash(1000), 10, 'healthy run: first step again');
  assert.equal(b.onCrash(5), 20);
  assert.equal(b.streak, 2);
});

test('the defaults are documented numbers', () => {
  assert.deepEqual(DEFAULT_RESTART_POLICY, { backoffMs: [100, 500, 1000, 5000], healthyAfterMs: 30_000 });
  assert.throws(() => new CrashBackoff({ backoffMs: [], healthyAfterMs: 1 }), RangeError);
});
