// The one rule every strategy applies before considering a backend: it must be healthy and enabled
// (SharedState, written by the health checker and the admin API), below its connection limit, and not
// excluded by the caller (a retry never goes back to the backend that just failed).
import type { SharedState } from '../shared/state.ts';
import type { Backend } from './backend.ts';

export function isEligible(b: Backend, state: SharedState, exclude: ReadonlySet<number> | undefined): boolean {
  if (exclude !== undefined && exclude.has(b.index)) return false;
  if (!state.isBackendAvailable(b.index)) return false;
  return b.maxConnections === 0 || state.activeConnections(b.index) < b.maxConnections;
}
