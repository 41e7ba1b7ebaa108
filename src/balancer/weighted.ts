// Smooth weighted round robin, as nginx's ngx_http_upstream_get_peer does it: every pick, each eligible
// backend's `current` grows by its weight, the largest wins and pays back the total. With weights 5:1:1
// this yields a a b a c a a rather than a a a a a b c, so a heavy backend never gets a burst.
import type { SharedState } from '../shared/state.ts';
import type { Backend } from './backend.ts';
import { isEligible } from './eligibility.ts';
import type { PickContext, SelectionStrategy } from './strategy.ts';

export class SmoothWeighted implements SelectionStrategy {
  private readonly backends: readonly Backend[];
  private readonly state: SharedState;
  private readonly current: Float64Array;

  constructor(backends: readonly Backend[], state: SharedState) {
    this.backends = backends;
    this.state = state;
    this.current = new Float64Array(backends.length);
  }

  pick(ctx: PickContext): Backend | undefined {
    let best = -1;
    let total = 0;
    for (let i = 0; i < this.backends.length; i++) {
      const b = this.backends[i];
      // An ineligible backend neither accumulates nor pays back, like nginx skipping a down peer, so it
      // returns to the rotation without a pent-up burst.
      if (!isEligible(b, this.state, ctx.exclude)) continue;
      this.current[i] += b.weight;
      total += b.weight;
      if (best < 0 || this.current[i] > this.current[best]) best = i;
    }
    if (best < 0) return undefined;
    this.current[best] -= total;
    return this.backends[best];
  }
}
