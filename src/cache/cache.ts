// The shared response cache: what the request pipeline calls. One SQLite store (store-schema.ts) serves
// every shard and every protocol; counters and the coalescing signal live in CacheSharedState.
//
//   primary, once:   const shared = new CacheSharedState(); prepareCacheStore(settings, shared);
//                    hand shared.buffer to every shard
//   each shard:      const cache = ResponseCache.open(settings, shared.buffer)
//   per request:     cache.lookup(req) -> bypass | hit (serve it) | fetch (go to the backend with the fill)
//   admin:           cache.purge(prefix), new CacheSharedState(buffer).snapshot()
import { randomBytes } from 'node:crypto';
import { threadId } from 'node:worker_threads';
import type { FrontRequest } from '../shared/http-types.ts';
import { CacheSharedState } from '../shared/cache-state.ts';
import type { CacheContext } from './context.ts';
import { hitOf, entryAge, rowFreshness, type FoundEntry } from './entry.ts';
import { Fill } from './fill.ts';
import { FillLocks } from './fill-locks.ts';
import type { Hit } from './hit.ts';
import { bypassReason, primaryKey, type BypassReason } from './key.ts';
import { freshness } from './policy.ts';
import type { CacheSettings } from './settings.ts';
import { openDatabase } from './store-schema.ts';
import { CacheStore } from './store.ts';
import { pickVariant } from './vary.ts';
import type { HeaderList } from '../shared/http-types.ts';

export type Lookup =
  /** The cache stays out: forward as usual, store nothing. */
  | { kind: 'bypass'; reason: BypassReason | 'error' }
  /**
   * Serve `hit` (hit.serve(req, res), or compress it first). With `revalidate` the hit is stale within
   * stale-while-revalidate: also run that fill against the backend in the background.
   */
  | { kind: 'hit'; hit: Hit; revalidate?: Fill }
  /** Go to the backend with fill.backendHeaders(req.headers), then fill.refresh / fill.tee / fill.onError, and fill.release(). */
  | { kind: 'fetch'; fill: Fill };

export interface CacheOptions {
  /** last_access is written at most this often per entry (default 1000 ms); LRU order is that precise. */
  touchIntervalMs?: number;
  /** How long a key found uncacheable skips coalescing (default 30 s). */
  passTtlMs?: number;
  /** Store failures (the request is served anyway); default: ignored. */
  onError?(err: unknown, what: string): void;
}

/** Longest single wait between two looks at the store while another request fills (a lost wake-up costs at most this). */
const MAX_WAIT_STEP_MS = 250;

/** Once, in the primary, before shards open the store: creates it and drops what a previous run left half-done. */
export function prepareCacheStore(settings: CacheSettings, shared: CacheSharedState): void {
  const db = openDatabase(settings.path, true);
  try {
    const t = new CacheStore(db, settings.maxSize).totals();
    shared.setUsage(t.bytes, t.entries);
  } finally {
    db.close();
  }
}

/** `quiclb cache purge [PREFIX]` from another process: SQLite locking makes it safe while quiclb runs. */
export function purgeCacheFile(settings: CacheSettings, prefix?: string): number {
  const db = openDatabase(settings.path, false);
  try {
    return new CacheStore(db, settings.maxSize).purge(prefix);
  } finally {
    db.close();
  }
}

export class ResponseCache {
  private readonly ctx: CacheContext;

  private constructor(ctx: CacheContext) {
    this.ctx = ctx;
  }

  /** Opens this thread's connection to the shared store. Throws CacheStoreError (code QUICLB_CACHE_STORE). */
  static open(settings: CacheSettings, sharedBuffer: SharedArrayBuffer, opts: CacheOptions = {}): ResponseCache {
    const db = openDatabase(settings.path, false);
    const prefix = `${process.pid}.${threadId}.${randomBytes(4).toString('hex')}`;
    let n = 0;
    return new ResponseCache({
      store: new CacheStore(db, settings.maxSize),
      locks: new FillLocks(db),
      shared: new CacheSharedState(sharedBuffer),
      maxEntrySize: settings.maxEntrySize,
      lockTimeoutMs: settings.lockTimeoutMs,
      passTtlMs: opts.passTtlMs ?? 30_000,
      touchIntervalMs: opts.touchIntervalMs ?? 1000,
      newOwner: () => `${prefix}:${++n}`,
      onError: opts.onError ?? (() => {}),
    });
  }

  /**
   * The cache phase before a backend is chosen. Resolves at once unless another request (in any thread)
   * is fetching the same URL: then it waits for that fetch, up to cache.lockTimeout. Never rejects.
   */
  async lookup(req: FrontRequest): Promise<Lookup> {
    const { ctx } = this;
    const reason = bypassReason(req);
    if (reason !== undefined) {
      ctx.shared.add('bypass');
      return { kind: 'bypass', reason };
    }
    const key = primaryKey(req);
    const deadline = Date.now() + ctx.lockTimeoutMs;
    let waited = false;
    try {
      for (;;) {
        const seen = ctx.shared.fillSignal();
        const now = Date.now();
        const found = this.find(key, req.headers, req.method === 'GET');
        const state = found === undefined ? undefined : freshness(rowFreshness(found.row), entryAge(found.row, now));
        if (found !== undefined && state === 'fresh') {
          ctx.shared.add('hits');
          if (waited) ctx.shared.add('coalesced');
          this.touch(found, now);
          return { kind: 'hit', hit: hitOf(ctx, key, req, found, now, 'fresh') };
        }
        if (found !== undefined && state === 'stale-while-revalidate') {
          ctx.shared.add('stale');
          this.touch(found, now);
          const owner = ctx.newOwner();
          const background = req.method === 'GET' && ctx.locks.tryLock(key, owner, now, ctx.lockTimeoutMs) === 'acquired';
          const revalidate = background ? new Fill(ctx, { key, request: req, owner, stale: found }) : undefined;
          return { kind: 'hit', hit: hitOf(ctx, key, req, found, now, 'stale'), revalidate };
        }
        // HEAD never waits and stores nothing: its answer has no body.
        if (req.method !== 'GET') return this.miss(new Fill(ctx, { key, request: req }));
        const owner = ctx.newOwner();
        const lock = ctx.locks.tryLock(key, owner, now, ctx.lockTimeoutMs);
        if (lock === 'acquired') return this.miss(new Fill(ctx, { key, request: req, owner, stale: found }));
        if (lock === 'pass') return this.miss(new Fill(ctx, { key, request: req, passMode: true, stale: found }));
        if (now >= deadline) {
          ctx.shared.add('lockTimeouts');
          return this.miss(new Fill(ctx, { key, request: req, stale: found }));
        }
        waited = true;
        await ctx.shared.waitForFill(seen, Math.min(deadline - now, MAX_WAIT_STEP_MS));
      }
    } catch (err) {
      ctx.shared.add('errors');
      ctx.onError(err, 'cache: lookup failed; the request goes to the backend uncached');
      return { kind: 'bypass', reason: 'error' };
    }
  }

  /**
   * Removes stored responses: all of them, those whose URL starts with `prefix`
   * ("https://moodle.example.edu/theme/"), or, when `prefix` starts with "/", those whose path does
   * (any host). Returns how many were removed.
   */
  purge(prefix?: string): number {
    const { store, shared } = this.ctx;
    const n = store.purge(prefix);
    shared.add('purged', n);
    const t = store.totals();
    shared.setUsage(t.bytes, t.entries);
    return n;
  }

  /**
   * A configuration reload: the size bounds and the lock timeout apply to what happens next. (cache.enabled and
   * cache.path are bound to the store opened at start: a reload that changes them needs a restart.)
   */
  reconfigure(settings: CacheSettings): void {
    this.ctx.maxEntrySize = settings.maxEntrySize;
    this.ctx.lockTimeoutMs = settings.lockTimeoutMs;
    this.ctx.store.setMaxSize(settings.maxSize);
  }

  /** Counters and usage, the same in every thread. */
  stats(): ReturnType<CacheSharedState['snapshot']> {
    return this.ctx.shared.snapshot();
  }

  close(): void {
    this.ctx.store.db.close();
  }

  private miss(fill: Fill): Lookup {
    this.ctx.shared.add('misses');
    return { kind: 'fetch', fill };
  }

  /** The variant to use for this request, its first body chunk read when the body will be sent. */
  private find(key: string, headers: HeaderList, withBody: boolean): FoundEntry | undefined {
    const { store } = this.ctx;
    const row = pickVariant(store.variants(key), headers);
    if (row === undefined) return undefined;
    let first: Uint8Array | undefined;
    if (withBody && row.bodySize > 0) {
      first = store.chunk(row.id, 0);
      if (first === undefined) return undefined; // evicted between the two reads
    }
    return { row, headers: JSON.parse(row.headers) as HeaderList, first };
  }

  private touch(found: FoundEntry, now: number): void {
    if (now - found.row.lastAccess < this.ctx.touchIntervalMs) return;
    try {
      this.ctx.store.touch(found.row.id, now);
    } catch (err) {
      this.ctx.onError(err, 'cache: could not record an access (LRU order)');
    }
  }
}
