// The terminal phase: choose a backend (routes, stickiness, strategy), rewrite the request's header fields
// for it, and forward with retry (src/proxy/forward.ts) to an HTTP backend or to php-fpm (with the script the
// static phase resolved). The response goes back through the pipeline's response and body filters
// (Exchange.respondFromBackend, where a phase may take it over).
//
// When the cache lookup left a fill (Exchange.cache), the backend gets the fill's validators instead of the
// client's (RFC 9111 §4.3.1), and two backend answers are replaced by the stored response: a 304 to a
// revalidation (the entry is refreshed, §4.3.4, then served) and a failure (a 5xx, or no backend answered)
// while the stale entry is inside stale-if-error (RFC 5861 §4).
import type { Config } from '../../config/types.ts';
import type { Hit } from '../../cache/hit.ts';
import { discardingSink } from '../../cache/tee.ts';
import type { Forwarder } from '../../proxy/forward.ts';
import { upstreamHeaders } from '../../proxy/headers.ts';
import type { Exchange } from '../exchange.ts';
import { serveStored } from '../cache-answer.ts';
import type { Phase } from '../phase.ts';

const NO_COOKIES: Map<string, string> = new Map();

export function proxyPhase(config: Config, forwarder: Forwarder): Phase {
  const proxyHeaders = config.moodle.proxyHeaders;
  const sticky = config.loadBalancer.sessionPersistence;
  return {
    name: 'proxy',
    request(ex: Exchange): Promise<boolean> {
      const req = ex.req;
      const c = ex.cache;
      const fill = c?.fill;
      const fields = fill === undefined ? req.headers : fill.backendHeaders(req.headers);
      const headers = upstreamHeaders(fields, { clientIp: req.remoteAddress, proto: req.scheme, host: req.authority, port: req.localPort }, proxyHeaders);
      /** The stored answer sent instead of the backend's (after the forward settles). */
      let stored: Hit | undefined;
      return forwarder
        .forward({
          req,
          res: ex.res,
          body: ex.body,
          headers,
          script: ex.script,
          cookies: sticky ? ex.cookies() : NO_COOKIES,
          respond: (status, list, backend) => {
            ex.backend = backend;
            if (fill !== undefined) {
              if (fill.revalidating && status === 304) stored = fill.refresh(list);
              else if (status >= 500) stored = fill.onError();
              if (stored !== undefined) return discardingSink();
              c!.source = 'backend';
            }
            return ex.respondFromBackend(status, list);
          },
          answer: (status, text, extra) => {
            if (fill !== undefined && status >= 500) stored = fill.onError();
            if (stored === undefined) ex.answer(status, text, extra, 'proxy');
          },
          abort: (err) => ex.abort(err),
        })
        .then(async (outcome) => {
          ex.backend = outcome.backend;
          ex.attempts = outcome.attempts;
          if (outcome.status === 499) ex.status = 499;
          else if (stored !== undefined && !ex.res.headersSent) await serveStored(ex, c!, stored);
          // A phase that took the backend's response over (X-Accel-Redirect) may still be sending its answer.
          await ex.takeover;
          return true;
        });
    },
  };
}
