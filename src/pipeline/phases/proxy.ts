// The terminal phase: choose a backend (routes, stickiness, strategy), rewrite the request's header fields
// for it, and forward with retry (src/proxy/forward.ts). The response goes back through the pipeline's
// response and body filters (Exchange.respond).
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
          cookies: sticky ? ex.cookies() : NO_COOKIES,
          respond: (status, list, backend) => {
            ex.backend = backend;
            return ex.respond(status, list);
          },
          answer: (status, text, extra) => ex.answer(status, text, extra, 'proxy'),
          abort: (err) => ex.abort(err),
        })
        .then((outcome) => {
          ex.backend = outcome.backend;
          ex.attempts = outcome.attempts;
          if (outcome.status === 499) ex.status = 499;
          return true;
        });
    },
  };
}
