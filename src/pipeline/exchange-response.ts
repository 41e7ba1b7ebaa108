// The exchange seen as a FrontResponse: what quiclb answers itself from inside a phase (the admin endpoints,
// a stored response from the cache) goes through the pipeline's response and body filters like a backend's
// answer (access log status, Alt-Svc, compression), and a break tells the body filters (Exchange.abort).
import type { FrontResponse } from '../shared/http-types.ts';
import type { Exchange } from './exchange.ts';

export function exchangeResponse(ex: Exchange): FrontResponse {
  const res = ex.res;
  return {
    respond: (status, headers) => ex.respond(status, headers),
    inform: (status, headers) => res.inform(status, headers),
    abort: (reason) => ex.abort(reason),
    get headersSent() {
      return res.headersSent;
    },
    get finished() {
      return res.finished;
    },
    onClientAbort: (cb) => res.onClientAbort(cb),
  };
}
