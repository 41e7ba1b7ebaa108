// Token-bucket arithmetic on two float64 cells of a client-table slot: [spent tokens, last update in ms].
// The bucket holds `burst` tokens and refills at `perSecond`; a request takes one. Storing what was spent
// rather than what is left makes a zeroed slot (a client seen for the first time) a full bucket, whatever
// the clock reads. Callers hold the slot's lock.

export interface BucketRate {
  readonly burst: number;
  /** Tokens per millisecond. */
  readonly perMs: number;
}

export function bucketRate(requestsPerSecond: number, burst: number): BucketRate {
  return { burst, perMs: requestsPerSecond / 1000 };
}

// Float error must not cost a client its token: rate / 1000 is rarely exact in binary, and the rounding
// left in `spent` by many refills can make a bucket that holds exactly one token look a hair short (the
// bucket test checks this code against exact rational arithmetic; without the tolerance they disagree).
const EPSILON = 1e-6;

/**
 * Refills the bucket at cells[i] up to `now` and returns 0 when a token is available, else the
 * milliseconds until one is. Takes nothing (consume() does), so two buckets can be checked before either
 * is charged. A clock that went backwards (wall-clock adjustment) refills nothing and restarts from `now`.
 */
export function waitMs(cells: Float64Array, i: number, now: number, rate: BucketRate): number {
  const last = cells[i + 1];
  const elapsed = now > last ? now - last : 0;
  let spent = cells[i] - elapsed * rate.perMs;
  if (spent < 0) spent = 0;
  cells[i] = spent;
  cells[i + 1] = now;
  const over = spent + 1 - rate.burst;
  return over <= EPSILON ? 0 : over / rate.perMs;
}

/** Takes one token; call only after waitMs() returned 0 under the same lock. */
export function consume(cells: Float64Array, i: number): void {
  cells[i] += 1;
}

/** Tokens left at the last update (for tests and diagnostics). */
export function tokensLeft(cells: Float64Array, i: number, rate: BucketRate): number {
  return rate.burst - cells[i];
}

/**
 * Retry-After delay-seconds (RFC 9110 §10.2.3: a non-negative integer) for a wait in ms: rounded up, so a
 * client that obeys it finds a token, and at least 1, since 0 would invite an immediate retry.
 */
export function retryAfterSeconds(ms: number): number {
  return Math.max(1, Math.ceil(ms / 1000 - EPSILON));
}
