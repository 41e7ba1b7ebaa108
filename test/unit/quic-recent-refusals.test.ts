import { test } from 'node:test';
import assert from 'node:assert/strict';
import { REFUSAL_MEMORY_MS, RecentRefusals } from '../../src/quic/recent-refusals.ts';

test('a refused CID is remembered with what to do, until the memory ends', () => {
  const r = new RecentRefusals();
  r.add('aa', 'answer', 1000);
  r.add('bb', 'drop', 1000);
  assert.equal(r.check('aa', 1000), 'answer');
  assert.equal(r.check('bb', 1000 + REFUSAL_MEMORY_MS - 1), 'drop');
  assert.equal(r.check('cc', 1000), undefined);
  assert.equal(r.check('aa', 1000 + REFUSAL_MEMORY_MS), undefined, 'forgotten after REFUSAL_MEMORY_MS');
  assert.equal(r.check('aa', 1000), undefined, 'and gone for good');
  r.add('bb', 'answer', 5000);
  assert.equal(r.check('bb', 5000 + REFUSAL_MEMORY_MS - 1), 'answer', 'a new refusal replaces the old entry');
});

test('bounded: the oldest entries go first', () => {
  const r = new RecentRefusals();
  for (let i = 0; i < 10_000; i++) r.add(`cid-${i}`, 'answer', 0);
  assert.equal(r.check('cid-0', 1), undefined);
  assert.equal(r.check('cid-9999', 1), 'answer');
  assert.equal(r.check(`cid-${10_000 - 4096}`, 1), 'answer', 'the newest 4096 are kept');
  assert.equal(r.check(`cid-${10_000 - 4097}`, 1), undefined);
});
