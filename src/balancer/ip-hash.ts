// Client-IP affinity by consistent hashing (Karger et al.; ketama's ring): each backend owns
// VNODES_PER_WEIGHT points per unit of weight on a 32-bit ring, a client maps to the first point
// clockwise of hash(ip). Points depend only on backend ids, so adding a backend to N only takes over
// ~1/(N+1) of the clients and moves nobody else; removing or losing one moves only its own clients.
import type { SharedState } from '../shared/state.ts';
import type { Backend } from './backend.ts';
import { isEligible } from './eligibility.ts';
import { hash32 } from './hash.ts';
import { normalizeIp } from '../shared/ip.ts';
import type { PickContext, SelectionStrategy } from './strategy.ts';

export const VNODES_PER_WEIGHT = 160;

export class IpHash implements SelectionStrategy {
  private readonly backends: readonly Backend[];
  private readonly state: SharedState;
  /** Sorted ring positions and, at the same index, the owner's position in `backends`. */
  private readonly points: Uint32Array;
  private readonly owners: Uint16Array;

  constructor(backends: readonly Backend[], state: SharedState) {
    this.backends = backends;
    this.state = state;
    const ring: Array<[number, number]> = [];
    backends.forEach((b, owner) => {
      const vnodes = Math.max(1, Math.round(VNODES_PER_WEIGHT * b.weight));
      for (let k = 0; k < vnodes; k++) ring.push([hash32(`${b.id}#${k}`), owner]);
    });
    // Ties (a hash collision between two backends' points) sorted by owner so every thread agrees.
    ring.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
    this.points = Uint32Array.from(ring, (p) => p[0]);
    this.owners = Uint16Array.from(ring, (p) => p[1]);
  }

  pick(ctx: PickContext): Backend | undefined {
    const size = this.points.length;
    if (size === 0) return undefined;
    const start = this.firstPointAtOrAfter(hash32(normalizeIp(ctx.clientIp)));
    // Walk clockwise to the next distinct eligible owner: an unavailable owner's clients spread over its
    // ring neighbours instead of all landing on one backend. Stop once every backend has been seen.
    const seen = new Uint8Array(this.backends.length);
    let distinct = 0;
    for (let step = 0; step < size && distinct < this.backends.length; step++) {
      const owner = this.owners[(start + step) % size];
      if (seen[owner] === 1) continue;
      seen[owner] = 1;
      distinct++;
      const b = this.backends[owner];
      if (isEligible(b, this.state, ctx.exclude)) return b;
    }
    return undefined;
  }

  private firstPointAtOrAfter(h: number): number {
    let lo = 0;
    let hi = this.points.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.points[mid] < h) lo = mid + 1;
      else hi = mid;
    }
    return lo === this.points.length ? 0 : lo;
  }
}
