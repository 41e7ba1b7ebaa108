// The one owner of the response cache's cross-thread state (src/cache): its counters, the size of the
// store, and the word that wakes requests waiting for another thread's backend fetch. It lives here, not
// in src/cache, so that src/admin (below src/cache in the layering) can read the counters for /stats and
// /metrics. The primary allocates one buffer (new CacheSharedState().buffer) and hands it to every shard.
//
// Layout: Int32 [0] fill signal (bumped and notified whenever a fill ends), [1] unused;
//         BigInt64 from byte 8: one counter per CACHE_COUNTERS name, then the two usage gauges.

export const CACHE_COUNTERS = [
  'hits', // served from the cache, fresh (a 304 to a client's conditional request included)
  'misses', // nothing usable stored: went to the backend
  'stale', // served stale: stale-while-revalidate, stale-if-error
  'revalidated', // a stale entry the backend confirmed with 304, then served
  'stored', // entries written
  'evicted', // entries removed to stay within cache.maxSize (least recently used first)
  'bypass', // requests the cache does not handle (not GET/HEAD, Range, no authority)
  'coalesced', // requests that waited for another request's backend fetch and were served by it
  'uncacheable', // backend responses the rules refused to store (private, no-store, Set-Cookie, too large...)
  'purged', // entries removed by purge()
  'lockTimeouts', // requests that waited cache.lockTimeout for another fetch and then fetched themselves
  'errors', // store failures (disk full, database locked past its timeout); the request was still served
] as const;

export type CacheCounterName = (typeof CACHE_COUNTERS)[number];

export interface CacheSnapshot extends Record<CacheCounterName, number> {
  /** Bytes held by complete entries (bodies + headers), as of the last write by any thread. */
  bytes: number;
  entries: number;
}

const INDEX = Object.fromEntries(CACHE_COUNTERS.map((name, i) => [name, i])) as Record<CacheCounterName, number>;
const G_BYTES = CACHE_COUNTERS.length;
const G_ENTRIES = G_BYTES + 1;
const SLOTS = G_ENTRIES + 1;
const SIGNAL = 0;

export class CacheSharedState {
  readonly buffer: SharedArrayBuffer;
  private readonly words: Int32Array;
  private readonly slots: BigInt64Array;

  constructor(buffer?: SharedArrayBuffer) {
    this.buffer = buffer ?? new SharedArrayBuffer(8 + SLOTS * 8);
    this.words = new Int32Array(this.buffer, 0, 2);
    this.slots = new BigInt64Array(this.buffer, 8, SLOTS);
  }

  add(name: CacheCounterName, delta = 1): void {
    Atomics.add(this.slots, INDEX[name], BigInt(delta));
  }

  /** The store's totals after a write (every writer stores what its transaction saw). */
  setUsage(bytes: number, entries: number): void {
    Atomics.store(this.slots, G_BYTES, BigInt(bytes));
    Atomics.store(this.slots, G_ENTRIES, BigInt(entries));
  }

  snapshot(): CacheSnapshot {
    const out = {} as CacheSnapshot;
    for (const name of CACHE_COUNTERS) out[name] = Number(Atomics.load(this.slots, INDEX[name]));
    out.bytes = Number(Atomics.load(this.slots, G_BYTES));
    out.entries = Number(Atomics.load(this.slots, G_ENTRIES));
    return out;
  }

  /** Read before looking at the store; pass to waitForFill() so a fill ending in between is not missed. */
  fillSignal(): number {
    return Atomics.load(this.words, SIGNAL);
  }

  /** Wakes every request (in every thread) waiting for a fill. */
  signalFill(): void {
    Atomics.add(this.words, SIGNAL, 1);
    Atomics.notify(this.words, SIGNAL);
  }

  /** Resolves when a fill ends after `seen` was read, or after `timeoutMs`. Never blocks the thread. */
  async waitForFill(seen: number, timeoutMs: number): Promise<void> {
    const r = Atomics.waitAsync(this.words, SIGNAL, seen, Math.max(0, timeoutMs));
    if (r.async) await r.value;
  }
}
