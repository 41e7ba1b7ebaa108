// A stored response chosen for a request: what to answer with and how to send it. The first body chunk
// is read at lookup, so an entry of up to CHUNK_SIZE (most: stylesheets, scripts, icons) is whole in hand
// and cannot be evicted from under its response; later chunks are read as the client drains.
import type { BodySink, FrontRequest, FrontResponse, HeaderList } from '../shared/http-types.ts';
import { notModified, notModifiedHeaders } from './conditional.ts';
import type { CacheContext } from './context.ts';
import { ageSeconds } from './policy.ts';
import type { EntryRow } from './store.ts';
import { storeResponse } from './store-response.ts';

export type HitState = 'fresh' | 'stale' | 'revalidated';

export class EntryGoneError extends Error {
  readonly code = 'QUICLB_CACHE_ENTRY_GONE';
  constructor() {
    super('the cache entry was evicted or purged while it was being sent; the client sees an incomplete response and retries');
  }
}

export class Hit {
  /** fresh: within its lifetime; stale: served stale (stale-while-revalidate, stale-if-error); revalidated: a backend 304 just confirmed it. */
  readonly state: HitState;
  readonly status: number;
  /** The stored headers with Age and Content-Length of this answer. */
  readonly headers: HeaderList;
  readonly bodySize: number;
  /** Content-coding of the stored body ('identity', 'br', 'gzip', ...). */
  readonly encoding: string;
  private readonly ctx: CacheContext;
  private readonly id: number;
  private readonly first: Uint8Array | undefined;
  private readonly key: string;
  private readonly request: FrontRequest;

  constructor(ctx: CacheContext, key: string, request: FrontRequest, row: EntryRow, headers: HeaderList, currentAge: number, first: Uint8Array | undefined, state: HitState) {
    this.ctx = ctx;
    this.key = key;
    this.request = request;
    this.id = row.id;
    this.first = first;
    this.state = state;
    this.status = row.status;
    this.bodySize = row.bodySize;
    this.encoding = row.encoding;
    const out: HeaderList = [...headers, ['age', String(ageSeconds(currentAge))]];
    if (row.status !== 204) out.push(['content-length', String(row.bodySize)]);
    this.headers = out;
  }

  /** True when the client's own validators match: the answer is 304 (serve() does it; skip compressing). */
  notModified(requestHeaders: HeaderList): boolean {
    return notModified(requestHeaders, this.status, this.headers);
  }

  /** The body, chunk by chunk. Throws EntryGoneError if the entry disappears before its last chunk. */
  async *body(): AsyncGenerator<Uint8Array> {
    if (this.bodySize === 0) return;
    let sent = 0;
    for (let seq = 0; sent < this.bodySize; seq++) {
      const chunk = seq === 0 && this.first !== undefined ? this.first : this.ctx.store.chunk(this.id, seq);
      if (chunk === undefined) throw new EntryGoneError();
      sent += chunk.byteLength;
      yield chunk;
    }
  }

  /**
   * Answers `req` on `res`: 304 when the client's validators match, the headers alone for HEAD, else the
   * body with backpressure. Never rejects; a failure mid-body aborts the response.
   */
  async serve(req: FrontRequest, res: FrontResponse): Promise<void> {
    try {
      if (this.notModified(req.headers)) {
        res.respond(304, notModifiedHeaders(this.headers)).end();
        return;
      }
      const sink = res.respond(this.status, this.headers);
      if (req.method === 'HEAD' || this.status === 204 || this.bodySize === 0) {
        sink.end();
        return;
      }
      await this.pipeTo(sink, res);
    } catch (err) {
      if (!res.finished) res.abort(err instanceof Error ? err : undefined);
    }
  }

  /**
   * Stores another representation of this response under the same key, e.g. the compressed variant the
   * compression phase made of an identity hit (so the next client accepting that coding hits it). `headers`
   * are the new response's (Content-Encoding, Vary: Accept-Encoding). Returns the sink to write it to.
   */
  tee(status: number, headers: HeaderList, sink: BodySink): BodySink {
    return storeResponse(this.ctx, { key: this.key, request: this.request, requestTime: Date.now(), status, headers, sink }).sink;
  }

  private async pipeTo(sink: BodySink, res: FrontResponse): Promise<void> {
    let gone = false;
    let wake: (() => void) | undefined;
    res.onClientAbort(() => {
      gone = true;
      wake?.();
    });
    for await (const chunk of this.body()) {
      if (gone) return;
      if (!sink.write(chunk)) {
        await new Promise<void>((resolve) => {
          wake = resolve;
          sink.onDrain(resolve);
        });
        wake = undefined;
      }
    }
    if (!gone) sink.end();
  }
}
