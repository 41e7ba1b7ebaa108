// The response cache's store side. Placed after compression and before the filters that add fields of one
// client or one connection (affinity's Set-Cookie, Alt-Svc): its response filter sees the head the client
// gets, less those, and its body filter, next to the client in the body chain, sees the bytes the client
// gets (compressed when compression coded them). That is what is stored:
//   - a backend answer to a fill (a miss or a revalidation), if src/cache's rules allow (fill.tee);
//   - a compressed copy that compression made of a fresh stored identity answer, as that coding's variant
//     (hit.tee), so each coding is made once per URL.
// quiclb's affinity cookie is therefore never stored, and never reaches another client from the store; nor
// does it stop a cacheable response from being stored (src/cache refuses responses with Set-Cookie).
// The fill is released once the body chain ended (the compressor finishes after its input), or at once when
// the exchange breaks.
import type { BodySink } from '../../shared/http-types.ts';
import { contentCoding } from '../../cache/vary.ts';
import { TeeSink } from '../../cache/tee.ts';
import type { Exchange } from '../exchange.ts';
import type { Phase, ResponseHead } from '../phase.ts';

export function cacheStorePhase(enabled: boolean): Phase | undefined {
  if (!enabled) return undefined;
  return {
    name: 'cache-store',
    response(ex: Exchange, head: ResponseHead): void {
      const c = ex.cache;
      if (c === undefined) return;
      if (c.source === 'backend' && c.fill !== undefined) {
        c.final = { status: head.status, headers: [...head.headers] };
        // Compression coded the body: keep the backend's identity body as well (cache-lookup's body filter).
        c.storeIdentity = c.identity !== undefined && contentCoding(c.identity.headers) !== contentCoding(head.headers);
      } else if (c.source === 'stored' && c.hit !== undefined && c.hit.state !== 'stale' && contentCoding(head.headers) !== c.hit.encoding) {
        c.final = { status: head.status, headers: [...head.headers] };
      }
    },
    body(ex: Exchange, _head: ResponseHead, sink: BodySink): BodySink {
      const c = ex.cache;
      if (c === undefined) return sink;
      const final = c.final;
      c.final = undefined;
      let out = sink;
      if (c.source === 'backend' && c.fill !== undefined) {
        if (final !== undefined) out = c.fill.tee(final.status, final.headers, out);
        return c.releaseOnEnd(out);
      }
      if (final !== undefined && c.hit !== undefined) {
        out = c.hit.tee(final.status, final.headers, out);
        if (out instanceof TeeSink) {
          c.hitTee = out;
          ex.onAbort(() => c.abandon());
        }
      }
      return out;
    },
  };
}
