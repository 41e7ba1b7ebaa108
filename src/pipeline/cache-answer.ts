// Sends a stored response (src/cache Hit) as the exchange's answer. It goes through the response and body
// filters like a backend's answer: compression may code an identity entry for this client, and cache-store
// then keeps that coded copy as a new variant; the affinity filter adds nothing (no backend was chosen).
import type { Hit } from '../cache/hit.ts';
import type { Exchange } from './exchange.ts';
import type { CacheOutcome, ExchangeCache } from './exchange-cache.ts';
import { exchangeResponse } from './exchange-response.ts';

const OUTCOME: Record<Hit['state'], CacheOutcome> = { fresh: 'hit', stale: 'stale', revalidated: 'revalidated' };

/** Answers with `hit` (a 304 when the client's validators match, headers only for HEAD). Never rejects. */
export function serveStored(ex: Exchange, c: ExchangeCache, hit: Hit): Promise<void> {
  c.hit = hit;
  c.source = 'stored';
  c.outcome = OUTCOME[hit.state];
  return hit.serve(ex.req, exchangeResponse(ex));
}
