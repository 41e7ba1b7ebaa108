// Least connections over B_ACTIVE, the in-flight request gauge every shard updates in SharedState, so the
// choice reflects load from all threads. Equal scores are broken by a rotating start (just after the last winner): otherwise the first
// of several idle backends would receive every request of a burst before any gauge moves.
import type { SharedState } from '../shared/state.ts';
import type { Backend } from './backend.ts';
import { isEligible } from './eligibility.ts';
import type { PickContext, SelectionStrategy } from './strategy.ts';

export interface LeastConnectionsOptions {
  /** Compare active/weight instead of active (nginx least_conn semantics). */
  weighted?: boolean;
}

export class LeastConnections implements SelectionStrategy {
  private readonly backends: readonly Backend[];
  private readonly state: SharedState;
  private readonly weighted: boolean;
  private start = 0;

  constructor(backends: readonly Backend[], state: SharedState, opts: LeastConnectionsOptions = {}) {
    this.backends = backends;
    this.state = state;
    this.weighted = opts.weighted ?? false;
  }

  pick(ctx: PickContext): Backend | undefined {
    const n = this.backends.length;
    if (n === 0) return undefined;
    let best: Backend | undefined;
    let bestActive = 0;
    let bestPos = 0;
    for (let step = 0; step < n; step++) {
      const pos = (this.start + step) % n;
      const b = this.backends[pos];
      if (!isEligible(b, this.state, ctx.exclude)) continue;
      const active = this.state.activeConnections(b.index);
      // Cross-multiplied to compare active_b/weight_b < active_best/weight_best without float ties.
      if (best === undefined || (this.weighted ? active * best.weight < bestActive * b.weight : active < bestActive)) {
        best = b;
        bestActive = active;
        bestPos = pos;
      }
    }
    // Resume after the winner (not after the old start) so a run of ties is served in turn.
    if (best !== undefined) this.start = (bestPos + 1) % n;
    return best;
  }
}
