// A seeded source of choices for the fuzzers (mulberry32 from test/support/seeded-random.ts underneath): the same
// seed gives the same inputs, so every failure replays from its seed and case number.
import { rng } from '../support/seeded-random.ts';

export class Rand {
  readonly seed: number;
  private readonly next: () => number;

  constructor(seed: number) {
    this.seed = seed >>> 0;
    this.next = rng(this.seed);
  }

  /** A uniform float in [0, 1). */
  float(): number {
    return this.next();
  }

  /** An integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }

  /** An integer in [lo, hi]. */
  range(lo: number, hi: number): number {
    return lo + this.int(hi - lo + 1);
  }

  chance(p: number): boolean {
    return this.next() < p;
  }

  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)];
  }

  /** Picks by weight: `[[weight, value], ...]`. */
  weighted<T>(items: ReadonlyArray<readonly [number, T]>): T {
    let total = 0;
    for (const [w] of items) total += w;
    let x = this.next() * total;
    for (const [w, v] of items) {
      x -= w;
      if (x < 0) return v;
    }
    return items[items.length - 1][1];
  }

  bytes(n: number): Buffer {
    const b = Buffer.allocUnsafe(n);
    for (let i = 0; i < n; i++) b[i] = this.int(256);
    return b;
  }

  /** Small sizes are likelier than large ones (a log-uniform pick in [0, max]). */
  size(max: number): number {
    return Math.min(max, Math.floor(Math.exp(this.next() * Math.log(max + 1))) - 1 + this.int(2));
  }

  /** A child generator: case n of a run gets its own stream of choices, so cases replay one by one. */
  fork(n: number): Rand {
    return new Rand(Math.imul(this.seed ^ 0x9e3779b9, 0x85ebca6b) + Math.imul(n + 1, 0xc2b2ae35));
  }
}

/** The seed for case `index` of a run with seed `seed` (what Rand.fork uses), so one case replays alone. */
export function caseRand(seed: number, index: number): Rand {
  return new Rand(seed).fork(index);
}
