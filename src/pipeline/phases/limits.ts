// rateLimit: a client whose token bucket is empty gets 429 Too Many Requests with Retry-After
// (RFC 6585 §4), before a backend is chosen, so a flood of Moodle logins never reaches PHP's password hash.
// Runs after `admin` (an operator must be able to look at a flooded quiclb: the admin endpoints are never
// limited) and after `validate`; active health checks come from quiclb itself and never pass here.
// The client is the socket peer, unless server.trustedProxies lets X-Forwarded-For name it.
import type { Config } from '../../config/types.ts';
import type { RateLimiter } from '../../ratelimit/limiter.ts';
import { CidrList } from '../../shared/cidr.ts';
import { forwardedForOf, resolveClientAddress } from '../../shared/client-address.ts';
import type { Logger } from '../../shared/logger.ts';
import type { Exchange } from '../exchange.ts';
import type { Phase } from '../phase.ts';

const TEXT = {
  general: 'Too many requests from your address; retry after the time in Retry-After.',
  login: 'Too many login attempts from your address; retry after the time in Retry-After.',
} as const;

export function limitsPhase(config: Config, limiter: RateLimiter, logger: Logger): Phase | undefined {
  if (!config.rateLimit.enabled) return undefined;
  const trustedProxies = new CidrList(config.server.trustedProxies);
  return {
    name: 'limits',
    request(ex: Exchange): boolean {
      const req = ex.req;
      const forwarded = trustedProxies.size === 0 ? undefined : forwardedForOf(req.headers);
      const client = resolveClientAddress(req.remoteAddress, forwarded, trustedProxies);
      const verdict = limiter.checkRequest(client, req.method, req.path);
      if (verdict.ok) return false;
      if (verdict.log) {
        // At most once per client per rateLimit.logInterval, across all shards (the limiter decides).
        logger.warn(
          { client: verdict.client, reason: verdict.reason, retryAfterSeconds: verdict.retryAfterSeconds, method: req.method, path: req.path, peer: req.remoteAddress },
          'client rate-limited (429); further refusals of this client are not logged for rateLimit.logInterval',
        );
      }
      req.body?.resume();
      ex.answer(429, `429 ${TEXT[verdict.reason]}\n`, [['retry-after', String(verdict.retryAfterSeconds)]], 'limits');
      return true;
    },
  };
}
