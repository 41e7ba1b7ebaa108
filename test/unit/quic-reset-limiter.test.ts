import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { AddressResetLimiter, ResetWindow } from '../../src/quic/reset-limiter.ts';

describe('ResetWindow (per connection)', () => {
  it('allows max resets per window, refuses the next, and starts over in the next window', () => {
    const w = new ResetWindow(3, 1000);
    assert.deepEqual([w.record(0), w.record(10), w.record(20), w.record(30)], [true, true, true, false]);
    assert.equal(w.record(999), false);
    assert.equal(w.record(1000), true);
  });
});

describe('AddressResetLimiter (per client address)', () => {
  it('counts each address on its own', () => {
    const l = new AddressResetLimiter(2, 1000);
    assert.deepEqual([l.recordReset('a', 0), l.recordReset('a', 1), l.recordReset('a', 2)], [true, true, false]);
    assert.equal(l.recordReset('b', 3), true);
    assert.equal(l.recordReset('a', 1001), true, 'a new window');
  });

  it('keeps at most maxAddresses entries, dropping expired windows first, then the oldest', () => {
    const l = new AddressResetLimiter(1, 1000, 100);
    for (let i = 0; i < 100; i++) l.recordReset(`old${i}`, 0);
    assert.equal(l.size, 100);
    // All 100 expired by t=5000: they go first, nothing live is evicted.
    l.recordReset('fresh', 5000);
    assert.equal(l.size, 1);
    assert.equal(l.evictions, 0);
    for (let i = 0; i < 10_000; i++) l.recordReset(`live${i}`, 5000);
    assert.ok(l.size <= 100, `size ${l.size}`);
    assert.ok(l.evictions > 0);
    // The newest address is still counted: over its budget on the second reset.
    assert.equal(l.recordReset('live9999', 5001), false);
  });
});
