// The selection interface (after Pingora's BackendSelection): a strategy is built once per thread over an
// immutable list of backends and answers pick() from SharedState on every request. create-strategy.ts is
// the only place a config name becomes a class.
import type { Backend } from './backend.ts';

export interface PickContext {
  clientIp: string;
  /** Backend indexes not to use (already tried by this request). */
  exclude?: ReadonlySet<number>;
}

export interface SelectionStrategy {
  /** An available, non-full, non-excluded backend, or undefined when none is left. */
  pick(ctx: PickContext): Backend | undefined;
}
