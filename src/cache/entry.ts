// A complete stored entry as a lookup found it: its row, parsed headers, first body chunk and age.
import type { FrontRequest, HeaderList } from '../shared/http-types.ts';
import type { CacheContext } from './context.ts';
import { Hit, type HitState } from './hit.ts';
import { currentAgeMs, type FreshnessInput } from './policy.ts';
import type { EntryRow } from './store.ts';

export interface FoundEntry {
  row: EntryRow;
  headers: HeaderList;
  first: Uint8Array | undefined;
}

export function rowFreshness(row: EntryRow): FreshnessInput {
  return { lifetimeMs: row.lifetime, staleWhileRevalidateMs: row.swr, staleIfErrorMs: row.sie, mustRevalidate: row.mustRevalidate === 1 };
}

export function entryAge(row: EntryRow, now: number): number {
  return currentAgeMs(row.initialAge, row.responseTime, now);
}

export function hitOf(ctx: CacheContext, key: string, req: FrontRequest, e: FoundEntry, now: number, state: HitState): Hit {
  return new Hit(ctx, key, req, e.row, e.headers, entryAge(e.row, now), e.first, state);
}
