// One request's trip to the backend on behalf of the cache: a miss, or the revalidation of a stale entry.
// The request that holds the key's fill lock is the one the others wait for (coalescing); the lock ends
// when its response is stored, refused, or the fill is released.
import type { BodySink, FrontRequest, HeaderList } from '../shared/http-types.ts';
import type { CacheContext } from './context.ts';
import { entryAge, hitOf, rowFreshness, type FoundEntry } from './entry.ts';
import { headerValue, mergeNotModified } from './headers.ts';
import type { Hit } from './hit.ts';
import { initialAgeMs, storageDecision, usableOnError } from './policy.ts';
import { storeResponse } from './store-response.ts';
import type { TeeSink } from './tee.ts';

export interface FillInit {
  key: string;
  request: FrontRequest;
  /** The fill lock's owner id when this request holds it. */
  owner?: string;
  /** The key was marked uncacheable recently: a stored response clears the mark. */
  passMode?: boolean;
  /** The stored entry this fetch replaces or revalidates (stale), if any. */
  stale?: FoundEntry;
}

const CLIENT_VALIDATORS = new Set(['if-none-match', 'if-modified-since']);

export class Fill {
  /** The request goes with the stored entry's validators; a 304 answer goes to refresh(). */
  readonly revalidating: boolean;
  private readonly ctx: CacheContext;
  private readonly key: string;
  private readonly request: FrontRequest;
  private readonly requestTime = Date.now();
  private readonly passMode: boolean;
  private readonly stale: FoundEntry | undefined;
  private owner: string | undefined;
  private tees: TeeSink[] = [];

  constructor(ctx: CacheContext, init: FillInit) {
    this.ctx = ctx;
    this.key = init.key;
    this.request = init.request;
    this.owner = init.owner;
    this.passMode = init.passMode === true;
    this.stale = init.stale;
    const row = init.stale?.row;
    this.revalidating = init.request.method === 'GET' && row !== undefined && (row.etag !== null || row.lastModified !== null);
  }

  /**
   * The request headers to send to the backend. For GET the client's own If-None-Match/If-Modified-Since
   * are removed, so the backend answers in full and the response can be stored (the cache then answers
   * the client's validators itself on later hits); when revalidating, the stored entry's validators go
   * instead (RFC 9111 §4.3.1). HEAD requests go as they came.
   */
  backendHeaders(headers: HeaderList): HeaderList {
    if (this.request.method !== 'GET') return headers;
    const out = headers.filter(([k]) => !CLIENT_VALIDATORS.has(k));
    const row = this.stale?.row;
    if (this.revalidating && row !== undefined) {
      if (row.etag !== null) out.push(['if-none-match', row.etag]);
      if (row.lastModified !== null) out.push(['if-modified-since', row.lastModified]);
    }
    return out;
  }

  /**
   * The backend answered 304 to a revalidation: updates the stored entry from the 304's headers
   * (RFC 9111 §4.3.4) and returns it to serve. Call only when `revalidating`. A 304 whose ETag names
   * another representation, or whose fields now forbid storing, removes the entry; the answer is still
   * the stored response, this once.
   */
  refresh(notModified: HeaderList): Hit {
    const s = this.stale;
    if (s === undefined || !this.revalidating) throw new Error('Fill.refresh() called on a fill that is not revalidating: a 304 to a non-revalidating fill goes to tee()');
    const { ctx } = this;
    const now = Date.now();
    ctx.shared.add('revalidated');
    try {
      const etag = headerValue(notModified, 'etag');
      if (etag !== undefined && s.row.etag !== null && opaque(etag) !== opaque(s.row.etag)) {
        ctx.store.retire(s.row.id);
        return hitOf(ctx, this.key, this.request, s, now, 'stale');
      }
      const headers = mergeNotModified(s.headers, notModified);
      const initialAge = initialAgeMs(notModified, this.requestTime, now);
      const decision = storageDecision('GET', this.request.headers, s.row.status, headers, now);
      const row = { ...s.row, responseTime: now, requestTime: this.requestTime, initialAge };
      if (!decision.store) {
        ctx.store.retire(s.row.id);
        return hitOf(ctx, this.key, this.request, { ...s, row, headers }, now, 'revalidated');
      }
      const p = decision.policy;
      const refreshed = {
        headers: JSON.stringify(headers),
        etag: p.etag ?? null,
        lastModified: p.lastModified ?? null,
        requestTime: this.requestTime,
        responseTime: now,
        initialAge,
        lifetime: p.lifetimeMs,
        swr: p.staleWhileRevalidateMs,
        sie: p.staleIfErrorMs,
        mustRevalidate: p.mustRevalidate ? 1 : 0,
      };
      ctx.store.refresh(s.row.id, refreshed, now);
      return hitOf(ctx, this.key, this.request, { ...s, row: { ...row, ...refreshed }, headers }, now, 'revalidated');
    } catch (err) {
      ctx.shared.add('errors');
      ctx.onError(err, 'cache: could not refresh an entry after a 304');
      return hitOf(ctx, this.key, this.request, s, now, 'stale');
    } finally {
      this.unlock(false);
    }
  }

  /**
   * The backend failed (connection error, timeout, 5xx): the stale entry when stale-if-error allows
   * serving it (RFC 5861 §4), else undefined. Releases the fill either way.
   */
  onError(): Hit | undefined {
    const s = this.stale;
    const now = Date.now();
    let hit: Hit | undefined;
    if (s !== undefined && this.request.method === 'GET' && usableOnError(rowFreshness(s.row), entryAge(s.row, now))) {
      this.ctx.shared.add('stale');
      hit = hitOf(this.ctx, this.key, this.request, s, now, 'stale');
    }
    this.release();
    return hit;
  }

  /**
   * The store step: wraps `sink` (the client's, or the compressor's) so that the body is also written
   * to the cache when the response may be stored. Call with the response's status and headers as they
   * will be stored (what the client gets, without per-client fields such as quiclb's affinity cookie);
   * may be called more than once (the backend's body, then a compressed variant). Returns the sink to
   * write the body to.
   */
  tee(status: number, headers: HeaderList, sink: BodySink): BodySink {
    const { ctx } = this;
    const attempt = storeResponse(ctx, {
      key: this.key,
      request: this.request,
      requestTime: this.requestTime,
      status,
      headers,
      sink,
      onSettled: (outcome) => {
        if (outcome.kind === 'stored' && this.passMode) this.clearPass();
        // A stored answer replaces the stale entry of its own variant in its commit; the stale entry may be
        // another coding (a background revalidation of a br variant stores the backend's identity body), and
        // left visible it would keep answering, stale, and keep sending revalidations to the backend.
        if (outcome.kind === 'too-large' || outcome.kind === 'stored') this.dropStale();
        this.unlock(outcome.kind === 'too-large');
      },
    });
    // The backend's new answer supersedes the stale entry: a stored one replaces it in the same commit (same
    // variant), and one that may not be stored means the stale one must not be served any more either.
    if (attempt.refused !== undefined && attempt.refused !== 'method' && status < 500) this.dropStale();
    if (attempt.tee !== undefined) this.tees.push(attempt.tee);
    else if (attempt.refused === undefined) this.unlock(false);
    // Refused: mark the key uncacheable so that waiting requests go to the backend at once, unless the
    // refusal says nothing about the URL (HEAD) or is likely transient (a 5xx).
    else this.unlock(attempt.refused !== 'method' && !(attempt.refused === 'status' && status >= 500));
    return attempt.sink;
  }

  /**
   * Ends the fill in every outcome (call it once the exchange is over; idempotent): a tee whose body did
   * not end is discarded, and the fill lock is released so waiting requests go on.
   */
  release(): void {
    for (const t of this.tees) t.abandon();
    this.tees = [];
    this.unlock(false);
  }

  private unlock(pass: boolean): void {
    const owner = this.owner;
    if (owner === undefined) return;
    this.owner = undefined;
    try {
      if (pass) this.ctx.locks.markPass(this.key, Date.now(), this.ctx.passTtlMs);
      else this.ctx.locks.release(this.key, owner);
    } catch (err) {
      this.ctx.shared.add('errors');
      this.ctx.onError(err, 'cache: could not release a fill lock (it expires by itself)');
    }
    this.ctx.shared.signalFill();
  }

  private dropStale(): void {
    if (this.stale === undefined) return;
    try {
      this.ctx.store.retire(this.stale.row.id);
    } catch (err) {
      this.ctx.onError(err, 'cache: could not remove a superseded entry');
    }
  }

  private clearPass(): void {
    try {
      this.ctx.locks.clearPass(this.key);
    } catch (err) {
      this.ctx.onError(err, 'cache: could not clear an uncacheable mark');
    }
  }
}

const opaque = (tag: string) => (tag.startsWith('W/') ? tag.slice(2) : tag);
