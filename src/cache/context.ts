// What the parts of one ResponseCache share: the store, the fill locks, the cross-thread counters and
// the settings they act on.
import type { CacheSharedState } from '../shared/cache-state.ts';
import type { FillLocks } from './fill-locks.ts';
import type { CacheStore } from './store.ts';

export interface CacheContext {
  store: CacheStore;
  locks: FillLocks;
  shared: CacheSharedState;
  maxEntrySize: number;
  /** Fill lock lifetime and how long a request waits for another's fill (cache.lockTimeout). */
  lockTimeoutMs: number;
  /** How long a key found uncacheable skips coalescing. */
  passTtlMs: number;
  /** last_access is written at most this often per entry (LRU precision against write load). */
  touchIntervalMs: number;
  /** Unique per fill: `${ownerPrefix}:${n}`. */
  newOwner(): string;
  /** Where store failures are reported (the request is served either way). */
  onError(err: unknown, what: string): void;
}
