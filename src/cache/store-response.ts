// The store decision for one response and, when it may be stored, the tee that writes it. Shared by a
// fill (the backend's answer to a miss) and a hit (a new variant, e.g. compressed, of a stored response).
import type { BodySink, FrontRequest, HeaderList } from '../shared/http-types.ts';
import type { CacheContext } from './context.ts';
import { headerValue, storedHeaders } from './headers.ts';
import { keyPath } from './key.ts';
import { initialAgeMs, storageDecision, type NotStoredReason } from './policy.ts';
import { TeeSink, type TeeOutcome } from './tee.ts';
import { contentCoding, varyKey } from './vary.ts';

export interface StoreInput {
  key: string;
  request: FrontRequest;
  /** When the request went to the backend (§4.2.3 request_time). */
  requestTime: number;
  status: number;
  headers: HeaderList;
  /** Where the body goes next (the client, the compressor). */
  sink: BodySink;
  /** Runs once the stored entry is committed or the attempt failed (not when refused up front). */
  onSettled?(outcome: TeeOutcome): void;
}

export interface StoreAttempt {
  /** What the caller writes the body to: a TeeSink, or `sink` itself when nothing is stored. */
  sink: BodySink;
  tee?: TeeSink;
  refused?: NotStoredReason;
}

export function storeResponse(ctx: CacheContext, input: StoreInput): StoreAttempt {
  const responseTime = Date.now();
  const { request, status, headers, sink } = input;
  const decision = storageDecision(request.method, request.headers, status, headers, responseTime);
  if (!decision.store) {
    if (decision.reason !== 'method') ctx.shared.add('uncacheable');
    return { sink, refused: decision.reason };
  }
  const lengthField = headerValue(headers, 'content-length');
  const expectedLength = lengthField !== undefined && /^\d+$/.test(lengthField) ? Number(lengthField) : undefined;
  if (expectedLength !== undefined && expectedLength > ctx.maxEntrySize) {
    ctx.shared.add('uncacheable');
    return { sink, refused: 'too-large' };
  }
  const p = decision.policy;
  let id: number;
  try {
    id = ctx.store.begin(
      {
        key: input.key,
        path: keyPath(input.key),
        vary: varyKey(p.varyNames, request.headers),
        encoding: contentCoding(headers),
        status,
        headers: JSON.stringify(storedHeaders(headers)),
        etag: p.etag ?? null,
        lastModified: p.lastModified ?? null,
        requestTime: input.requestTime,
        responseTime,
        initialAge: initialAgeMs(headers, input.requestTime, responseTime),
        lifetime: p.lifetimeMs,
        swr: p.staleWhileRevalidateMs,
        sie: p.staleIfErrorMs,
        mustRevalidate: p.mustRevalidate ? 1 : 0,
      },
      responseTime,
    );
  } catch (err) {
    ctx.shared.add('errors');
    ctx.onError(err, 'cache: could not start storing a response');
    return { sink };
  }
  const tee = new TeeSink(sink, ctx.store, id, ctx.maxEntrySize, expectedLength, (outcome, err) => {
    if (outcome.kind === 'stored') {
      ctx.shared.add('stored');
      if (outcome.result.evicted > 0) ctx.shared.add('evicted', outcome.result.evicted);
      ctx.shared.setUsage(outcome.result.bytes, outcome.result.entries);
    } else if (outcome.kind === 'too-large') {
      ctx.shared.add('uncacheable');
    } else if (outcome.why === 'error') {
      ctx.shared.add('errors');
      ctx.onError(err, 'cache: could not store a response');
    }
    input.onSettled?.(outcome);
  });
  return { sink: tee, tee };
}
