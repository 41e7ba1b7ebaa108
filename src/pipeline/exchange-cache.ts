// What the response cache (src/cache) is doing for one exchange (Exchange.cache), shared by the phases that
// act on it: cache-lookup (the lookup; the identity copy of a body that compression is about to code), proxy
// (the backend trip of a fill: validators, 304 refresh, stale-if-error) and cache-store (the copy of what the
// client gets, after compression). Undefined on exchanges the cache never saw (admin paths, refusals).
import type { Fill } from '../cache/fill.ts';
import type { Hit } from '../cache/hit.ts';
import type { TeeSink } from '../cache/tee.ts';
import type { BodySink, HeaderList } from '../shared/http-types.ts';

/** For the access log: how the cache took part. */
export type CacheOutcome =
  | 'bypass' // not a request the cache handles (not GET/HEAD, Range, a body, WebSocket)
  | 'miss' // went to the backend; its answer may have been stored
  | 'hit' // a fresh stored answer (a 304 to the client's validators included)
  | 'stale' // a stale stored answer: stale-while-revalidate, or stale-if-error when the backend failed
  | 'revalidated'; // the backend confirmed the stored answer with a 304, which was then served

/** A response head as it stood at one point of the response filters (a copy: later filters change theirs). */
export interface StoredHead {
  status: number;
  headers: HeaderList;
}

export class ExchangeCache {
  outcome: CacheOutcome;
  /** The backend trip made on behalf of the cache (a miss, or the revalidation of a stale entry). */
  readonly fill: Fill | undefined;
  /** The stored answer being sent: a fresh or stale hit, or the entry a backend 304 refreshed. */
  hit: Hit | undefined;
  /**
   * Where the answer now going out comes from: the backend (the fill may store it), the store (a compressed
   * copy of it may be stored as a new variant), or undefined: quiclb's own answers (502, 504...), never stored.
   */
  source: 'backend' | 'stored' | undefined;
  /** The backend's head before compression (cache-lookup's response filter). */
  identity: StoredHead | undefined;
  /** The head the client gets, to store (cache-store's response filter, for its body filter). */
  final: StoredHead | undefined;
  /** Compression coded the backend's body: its identity form is stored too (cache-lookup's body filter). */
  storeIdentity = false;
  /** The tee of a new variant of a hit (a compressed copy): abandoned if the response breaks. */
  hitTee: TeeSink | undefined;
  /** The client-side end of the body chain has not ended yet: the fill is released when it does, or on abort. */
  private bodyOpen = false;
  private released = false;

  constructor(outcome: CacheOutcome, fill?: Fill) {
    this.outcome = outcome;
    this.fill = fill;
  }

  /**
   * Wraps the sink next to the client so that the fill is released only once the whole body chain ended
   * (a compressor ends its output after its input; the last tee commits on that end).
   */
  releaseOnEnd(sink: BodySink): BodySink {
    this.bodyOpen = true;
    return {
      write: (chunk) => sink.write(chunk),
      end: (chunk) => {
        try {
          sink.end(chunk);
        } finally {
          this.bodyOpen = false;
          this.release();
        }
      },
      onDrain: (cb) => sink.onDrain(cb),
    };
  }

  /** The request hook settled: release now unless a body is still on its way (then releaseOnEnd does it). */
  settled(): void {
    if (!this.bodyOpen) this.release();
  }

  /** The response broke or the client left: whatever was being stored is dropped. Idempotent. */
  abandon(): void {
    this.hitTee?.abandon();
    this.bodyOpen = false;
    this.release();
  }

  /** Ends the fill in every outcome (src/cache: drops an unfinished body, ends the coalescing lock). Idempotent. */
  release(): void {
    if (this.released) return;
    this.released = true;
    this.fill?.release();
  }
}
