// A stale-while-revalidate hit (RFC 5861 §3) was served from the store; this sends the revalidation to a
// backend in the background, through the same forwarder (backend selection, retry, passive health) as any
// request, with no client: a 304 refreshes the entry, a new 200 replaces it, a failure leaves it as it is.
import type { Config } from '../config/types.ts';
import type { Fill } from '../cache/fill.ts';
import { discardingSink } from '../cache/tee.ts';
import type { Forwarder } from '../proxy/forward.ts';
import { upstreamHeaders } from '../proxy/headers.ts';
import type { FrontResponse } from '../shared/http-types.ts';
import type { Logger } from '../shared/logger.ts';
import type { Exchange } from './exchange.ts';

/** The response side of a request no client waits for: nothing is ever sent. */
function detachedResponse(): FrontResponse {
  return {
    respond: () => discardingSink(),
    inform: () => {},
    abort: () => {},
    headersSent: false,
    finished: false,
    onClientAbort: () => {},
  };
}

const NO_COOKIES: Map<string, string> = new Map();

export function revalidateInBackground(forwarder: Forwarder, config: Config, logger: Logger, ex: Exchange, fill: Fill): void {
  const req = ex.req;
  try {
    const headers = upstreamHeaders(
      fill.backendHeaders(req.headers),
      { clientIp: req.remoteAddress, proto: req.scheme, host: req.authority, port: req.localPort },
      config.moodle.proxyHeaders,
    );
    forwarder
      .forward({
        req,
        res: detachedResponse(),
        body: null,
        headers,
        cookies: config.loadBalancer.sessionPersistence ? ex.cookies() : NO_COOKIES,
        respond: (status, list) => {
          if (fill.revalidating && status === 304) fill.refresh(list);
          else if (status >= 500) fill.onError();
          else return fill.tee(status, list, discardingSink());
          return discardingSink();
        },
        answer: () => void fill.onError(),
        abort: () => fill.release(),
      })
      .then(
        () => fill.release(),
        (err: unknown) => {
          fill.release();
          logger.error({ err, path: req.path }, 'cache: background revalidation failed');
        },
      );
  } catch (err) {
    fill.release();
    logger.error({ err, path: req.path }, 'cache: could not start a background revalidation');
  }
}
