// The one place a config strategy name becomes a SelectionStrategy.
import type { Strategy } from '../config/types.ts';
import type { SharedState } from '../shared/state.ts';
import type { Backend } from './backend.ts';
import type { SelectionStrategy } from './strategy.ts';
import { RoundRobin } from './round-robin.ts';
import { SmoothWeighted } from './weighted.ts';
import { LeastConnections } from './least-connections.ts';
import { IpHash } from './ip-hash.ts';

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
