// The terminal phase: choose a backend (routes, stickiness, strategy), rewrite the request's header fields
// for it, and forward with retry (src/proxy/forward.ts) to an HTTP backend or to php-fpm (with the script the
// static phase resolved). The response goes back through the pipeline's response and body filters
// (Exchange.respondFromBackend, where a phase may take it over).
import type { Config } from '../../config/types.ts';
import type { Forwarder } from '../../proxy/forward.ts';
import { upstreamHeaders } from '../../proxy/headers.ts';
import type { Exchange } from '../exchange.ts';
import type { Phase } from '../phase.ts';

const NO_COOKIES: Map<string, string> = new Map();

export function proxyPhase(config: Config, forwarder: Forwarder): Phase {
  const proxyHeaders = config.moodle.proxyHeaders;
  const sticky = config.loadBalancer.sessionPersistence;
  return {
    name: 'proxy',
    request(ex: Exchange): Promise<boolean> {
      const req = ex.req;
      const headers = upstreamHeaders(req.headers, { clientIp: req.remoteAddress, proto: req.scheme, host: req.authority, port: req.localPort }, proxyHeaders);
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
            return ex.respondFromBackend(status, list);
          },
          answer: (status, text, extra) => ex.answer(status, text, extra, 'proxy'),
          abort: (err) => ex.abort(err),
        })
        .then(async (outcome) => {
          ex.backend = outcome.backend;
          ex.attempts = outcome.attempts;
          if (outcome.status === 499) ex.status = 499;
          // A phase that took the backend's response over (X-Accel-Redirect) may still be sending its answer.
          await ex.takeover;
          return true;
        });
    },
  };
}
