// WebSocket handshakes (FrontRequest.upgrade, from every frontend): proxied to a backend and kept open as a
// tunnel (src/proxy/websocket.ts), or, with websocket.enabled false, answered 501 Not Implemented here: a
// refusal the client understands at once (RFC 6455 §4.1: anything but 101 fails the connection), where a
// handshake passed on as a plain GET would only show the backend's page to a client expecting frames. (Off,
// HTTP/2 and HTTP/3 do not offer extended CONNECT at all, so only HTTP/1.1 handshakes get here then.)
// Runs right before the proxy phase: rate limits, validation and redirects have applied as to any request.
import type { Config } from '../../config/types.ts';
import type { WebSocketProxy } from '../../proxy/websocket.ts';
import { upstreamHeaders } from '../../proxy/headers.ts';
import type { Exchange } from '../exchange.ts';
import type { Phase } from '../phase.ts';

const NO_COOKIES: Map<string, string> = new Map();

export function websocketPhase(config: Config, websockets: WebSocketProxy): Phase {
  const enabled = config.websocket.enabled;
  const proxyHeaders = config.moodle.proxyHeaders;
  const sticky = config.loadBalancer.sessionPersistence;
  return {
    name: 'websocket',
    request(ex: Exchange): boolean | Promise<boolean> {
      const req = ex.req;
      if (req.upgrade !== 'websocket') return false;
      if (!enabled || ex.res.upgrade === undefined) {
        ex.answer(501, '501 Not Implemented: WebSocket proxying is turned off here (websocket.enabled).\n', undefined, 'websocket');
        return true;
      }
      const headers = upstreamHeaders(req.headers, { clientIp: req.remoteAddress, proto: req.scheme, host: req.authority, port: req.localPort }, proxyHeaders);
      return websockets
        .open({
          req,
          res: ex.res,
          headers,
          cookies: sticky ? ex.cookies() : NO_COOKIES,
          accept: (list, backend) => {
            ex.backend = backend;
            return ex.upgrade(list);
          },
          respond: (status, list, backend) => {
            ex.backend = backend;
            return ex.respond(status, list);
          },
          answer: (status, text, extra) => ex.answer(status, text, extra, 'websocket'),
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
