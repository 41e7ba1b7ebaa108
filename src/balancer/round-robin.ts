// Plain round robin. The cursor is per thread (each shard rotates on its own), which still spreads load
// evenly overall; sharing it through Atomics would add a contended write per request for no gain.
import type { SharedState } from '../shared/state.ts';
import type { Backend } from './backend.ts';
import { isEligible } from './eligibility.ts';
import type { PickContext, SelectionStrategy } from './strategy.ts';

export class RoundRobin implements SelectionStrategy {
  private readonly backends: readonly Backend[];
  private readonly state: SharedState;
  private cursor = 0;

  constructor(backends: readonly Backend[], state: SharedState) {
    this.backends = backends;
    this.state = state;
  }

  pick(ctx: PickContext): Backend | undefined {
    const n = this.backends.length;
    for (let step = 0; step < n; step++) {
      const i = (this.cursor + step) % n;
      const b = this.backends[i];
      if (isEligible(b, this.state, ctx.exclude)) {
        this.cursor = (i + 1) % n;
        return b;
      }
    }
    return undefined;
  }
}
