// The response cache's request side (src/cache, cache.enabled or moodle.enableCaching), after the limits and
// before the proxy: a fresh stored answer is served here (a 304 when the client's validators match, headers
// only for HEAD, which a stored GET answers); a stale one inside stale-while-revalidate is served too while a
// background request revalidates it; otherwise the request goes on to the proxy with the lookup's fill
// (Exchange.cache), whose backend answer cache-store keeps. Concurrent misses for one URL, in any shard, wait
// here for the first one's backend fetch (up to cache.lockTimeout) and are then served from the store.
//
// Its response and body filters keep the backend's identity body too when the compression phase (next in
// the order) codes it, so the backend runs once per URL whatever codings clients ask for: a later client
// that wants another coding gets the identity entry compressed once and stored as that coding's variant.
import type { Config } from '../../config/types.ts';
import type { ResponseCache } from '../../cache/cache.ts';
import type { Forwarder } from '../../proxy/forward.ts';
import type { BodySink } from '../../shared/http-types.ts';
import type { Logger } from '../../shared/logger.ts';
import type { Exchange } from '../exchange.ts';
import { ExchangeCache } from '../exchange-cache.ts';
import { serveStored } from '../cache-answer.ts';
import { revalidateInBackground } from '../cache-revalidate.ts';
import type { Phase, ResponseHead } from '../phase.ts';

export function cacheLookupPhase(cache: ResponseCache | undefined, config: Config, forwarder: Forwarder, logger: Logger): Phase | undefined {
  if (cache === undefined) return undefined;
  return {
    name: 'cache-lookup',
    request(ex: Exchange): boolean | Promise<boolean> {
      // A WebSocket handshake is a GET whose answer is a connection, never a stored response.
      if (ex.req.upgrade !== undefined) return false;
      return cache.lookup(ex.req).then(async (found) => {
        if (found.kind === 'bypass') {
          ex.cache = new ExchangeCache('bypass');
          return false;
        }
        if (found.kind === 'fetch') {
          const c = new ExchangeCache('miss', found.fill);
          ex.cache = c;
          // Whatever ends the exchange early (the client leaves, a broken body) ends the fill too.
          ex.onAbort(() => c.abandon());
          return false;
        }
        const c = new ExchangeCache('hit');
        ex.cache = c;
        if (found.revalidate !== undefined) revalidateInBackground(forwarder, config, logger, ex, found.revalidate);
        await serveStored(ex, c, found.hit);
        return true;
      });
    },
    response(ex: Exchange, head: ResponseHead): void {
      const c = ex.cache;
      if (c?.fill !== undefined && c.source === 'backend') c.identity = { status: head.status, headers: [...head.headers] };
    },
    body(ex: Exchange, _head: ResponseHead, sink: BodySink): BodySink {
      const c = ex.cache;
      if (c?.fill === undefined || !c.storeIdentity || c.identity === undefined) return sink;
      c.storeIdentity = false;
      return c.fill.tee(c.identity.status, c.identity.headers, sink);
    },
    done(ex: Exchange): void {
      ex.cache?.settled();
    },
  };
}
