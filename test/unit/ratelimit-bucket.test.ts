import { test } from 'node:test';
import assert from 'node:assert/strict';
import { rng } from '../support/seeded-random.ts';
import { bucketRate, consume, retryAfterSeconds, tokensLeft, waitMs } from '../../src/ratelimit/token-bucket.ts';

/** take(): waitMs then consume, as the limiter does; returns the wait (0 = taken). */
function take(cells: Float64Array, now: number, rate = bucketRate(20, 20)): number {
  const wait = waitMs(cells, 0, now, rate);
  if (wait === 0) consume(cells, 0);
  return wait;
}

test('a new (zeroed) bucket is full: burst tokens at once, then refused', () => {
  const cells = new Float64Array(2);
  const t0 = 1_700_000_000_000;
  for (let i = 0; i < 20; i++) assert.equal(take(cells, t0), 0, `request ${i + 1}`);
  // 20/s: the next token is 50 ms away.
  assert.equal(take(cells, t0), 50);
  assert.equal(retryAfterSeconds(50), 1);
});

test('refill: 20/s gives one token per 50 ms, never more than burst', () => {
  const cells = new Float64Array(2);
  const t0 = 1_700_000_000_000;
  for (let i = 0; i < 20; i++) take(cells, t0);
  assert.ok(Math.abs(take(cells, t0 + 49) - 1) < 1e-6, '1 ms short of a token');
  assert.equal(take(cells, t0 + 50), 0);
  assert.equal(take(cells, t0 + 50), 50);
  // Half a second later: 10 tokens.
  let taken = 0;
  while (take(cells, t0 + 550) === 0) taken++;
  assert.equal(taken, 10);
  // An hour idle: full again, but only burst.
  waitMs(cells, 0, t0 + 3_600_000, bucketRate(20, 20));
  assert.equal(tokensLeft(cells, 0, bucketRate(20, 20)), 20);
});

test('slow rates: the wait (Retry-After) is the time to the next whole token, rounded up to seconds', () => {
  const rate = bucketRate(0.1, 2); // one every 10 s
  const cells = new Float64Array(2);
  const t0 = 1_700_000_000_000;
  assert.equal(take(cells, t0, rate), 0);
  assert.equal(take(cells, t0, rate), 0);
  assert.equal(take(cells, t0, rate), 10_000);
  assert.equal(take(cells, t0 + 2500, rate), 7500);
  assert.equal(retryAfterSeconds(7500), 8);
  assert.equal(retryAfterSeconds(7001), 8);
  assert.equal(retryAfterSeconds(7000.0000001), 7, 'float noise does not add a second');
  assert.equal(retryAfterSeconds(0.3), 1, 'never 0');
  assert.equal(take(cells, t0 + 10_000, rate), 0);
});

test('a clock that goes back refills nothing and does not wedge the bucket', () => {
  const cells = new Float64Array(2);
  const t0 = 1_700_000_000_000;
  for (let i = 0; i < 20; i++) take(cells, t0);
  assert.equal(take(cells, t0 - 60_000), 50, 'a minute back: still empty, next token 50 ms away');
  assert.equal(take(cells, t0 - 60_000 + 50), 0, 'refills from the new reading on');
});

test('on a millisecond clock the float bucket grants exactly what exact rational arithmetic grants', () => {
  // Rates num/den per second, random integer-ms gaps (as Date.now gives): the float code must agree with a
  // BigInt model that has no rounding at all. Without the epsilon some seeds grant one token fewer.
  const random = rng(44487);
  for (let trial = 0; trial < 300; trial++) {
    const num = 1 + Math.floor(random() * 50);
    const den = 1 + Math.floor(random() * 10);
    const burst = 1 + Math.floor(random() * 30);
    const rate = bucketRate(num / den, burst);
    const cells = new Float64Array(2);
    const unit = BigInt(den * 1000); // exact tokens are counted in 1/(den * 1000) of a token
    let spent = 0n;
    let now = 1_700_000_000_000;
    let last = now;
    let floatTaken = 0;
    let exactTaken = 0;
    for (let i = 0; i < 300; i++) {
      now += Math.floor(random() * 1.5 * (1000 * den) / num);
      if (take(cells, now, rate) === 0) floatTaken++;
      spent -= BigInt(now - last) * BigInt(num);
      if (spent < 0n) spent = 0n;
      last = now;
      if (spent + unit <= BigInt(burst) * unit) {
        spent += unit;
        exactTaken++;
      }
    }
    assert.equal(floatTaken, exactTaken, `trial ${trial}: ${num}/${den} per second, burst ${burst}`);
  }
});
