import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { FinishedStreams } from '../../src/http3/stream-ids.ts';

describe('FinishedStreams', () => {
  it('folds finished ids into a watermark and keeps out-of-order ones in between', () => {
    const f = new FinishedStreams(0);
    f.add(4);
    f.add(8);
    assert.equal(f.has(0), false);
    assert.equal(f.has(4), true);
    assert.equal(f.outOfOrderCount, 2);
    f.add(0);
    assert.equal(f.outOfOrderCount, 0);
    assert.equal(f.has(8), true);
    assert.equal(f.has(12), false);
  });

  it('stays bounded when one id never finishes (a long poll, or an id the peer skipped)', () => {
    const f = new FinishedStreams(0, 64);
    // Stream 0 stays open; 10,000 later streams finish.
    for (let id = 4; id <= 40_000; id += 4) f.add(id);
    assert.ok(f.outOfOrderCount <= 64, `out of order: ${f.outOfOrderCount}`);
    assert.equal(f.has(40_000), true);
    assert.equal(f.has(40_004), false);
    // The watermark moved past 0: the caller's own table of open streams wins over has() for it.
    assert.equal(f.has(0), true);
  });
});
