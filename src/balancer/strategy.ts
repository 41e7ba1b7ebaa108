// The selection interface (after Pingora's BackendSelection): a strategy is built once per thread over an
// immutable list of backends and answers pick() from SharedState on every request. createStrategy is the
// only place a config name becomes a class.
import type { Strategy } from '../config/types.ts';
import type { SharedState } from '../shared/state.ts';
import type { Backend } from './backend.ts';
import { RoundRobin } from './round-robin.ts';
import { SmoothWeighted } from './weighted.ts';
import { LeastConnections } from './least-connections.ts';
import { IpHash } from './ip-hash.ts';

export interface PickContext {
  clientIp: string;
  /** Backend indexes not to use (already tried by this request). */
  exclude?: ReadonlySet<number>;
}

export interface SelectionStrategy {
  /** An available, non-full, non-excluded backend, or undefined when none is left. */
  pick(ctx: PickContext): Backend | undefined;
}

export class UnknownStrategyError extends Error {
  readonly code = 'QUICLB_UNKNOWN_STRATEGY';
  constructor(name: string) {
    super(`loadBalancer.strategy: unknown strategy "${name}" (use round_robin, weighted, least_connections or ip_hash)`);
    this.name = 'UnknownStrategyError';
  }
}

export function createStrategy(name: Strategy, backends: readonly Backend[], state: SharedState): SelectionStrategy {
  switch (name) {
    case 'round_robin':
      return new RoundRobin(backends, state);
    case 'weighted':
      return new SmoothWeighted(backends, state);
    case 'least_connections':
      // nginx's least_conn also honours weights; with the default weight 1 this is plain least-connections.
      return new LeastConnections(backends, state, { weighted: true });
    case 'ip_hash':
      return new IpHash(backends, state);
    default:
      throw new UnknownStrategyError(String(name));
  }
}
