// Every request of every protocol enters here: admin endpoints, the HTTP->HTTPS redirect, then the proxy.
// One access-log line per request.
import type { Config } from '../config/types.ts';
import type { Logger } from '../shared/logger.ts';
import { SharedState, G_REQ_HTTP1, G_REQ_HTTP2, G_REQ_HTTP3, SC_REQUESTS } from '../shared/state.ts';
import type { FrontRequest, FrontResponse, Protocol, RequestHandler } from '../proxy/types.ts';
import type { Proxy } from '../proxy/forward.ts';
import { handleAdmin } from '../admin/routes.ts';
import type { AdminContext } from '../admin/routes.ts';

const PROTOCOL_COUNTER: Record<Protocol, number> = { 'HTTP/1.1': G_REQ_HTTP1, 'HTTP/2': G_REQ_HTTP2, 'HTTP/3': G_REQ_HTTP3 };

export interface HandlerOptions {
  config: Config;
  state: SharedState;
  shard: number;
  proxy: Proxy;
  admin: AdminContext;
  logger: Logger;
}

function redirectTarget(req: FrontRequest, httpsPort: number): string {
  const host = req.authority.replace(/:\d+$/, '') || 'localhost';
  return `https://${host}${httpsPort === 443 ? '' : `:${httpsPort}`}${req.path}`;
}

export function createRequestHandler(opts: HandlerOptions): RequestHandler {
  const { config, state, shard, proxy, admin, logger } = opts;
  const adminPort = config.admin.port;
  return (req: FrontRequest, res: FrontResponse) => {
    const started = performance.now();
    state.addGlobal(PROTOCOL_COUNTER[req.protocol]);
    state.addShardCounter(shard, SC_REQUESTS);
    const log = (status: number, backend?: string, attempts?: number) => {
      if (!config.logging.accessLog) return;
      logger.info(
        {
          protocol: req.protocol,
          method: req.method,
          path: req.path,
          status,
          backend,
          attempts,
          client: req.remoteAddress,
          durationMs: Math.round((performance.now() - started) * 100) / 100,
        },
        'request',
      );
    };
    const onAdminPort = adminPort > 0 && req.localPort === adminPort;
    // The admin endpoints answer on their own (some asynchronously: /stats gathers every shard's
    // histograms); log when their status is known.
    const adminRes: FrontResponse = {
      respond: (status, headers) => {
        log(status, 'quiclb-admin');
        return res.respond(status, headers);
      },
      inform: (status, headers) => res.inform(status, headers),
      abort: (reason) => res.abort(reason),
      get headersSent() {
        return res.headersSent;
      },
      get finished() {
        return res.finished;
      },
      onClientAbort: (cb) => res.onClientAbort(cb),
    };
    if (handleAdmin(req, adminRes, admin)) return;
    if (onAdminPort) {
      proxy.simple(res, 404, 'Not found: the admin port serves /health, /stats, /metrics and /api/test only.\n');
      log(404);
      return;
    }
    if (config.server.redirectHttpToHttps && req.scheme === 'http') {
      req.body?.resume();
      proxy.simple(res, 308, `Moved to ${redirectTarget(req, config.server.httpsPort)}\n`, [
        ['location', redirectTarget(req, config.server.httpsPort)],
      ]);
      log(308);
      return;
    }
    proxy.handle(req, res).then(
      (outcome) => log(outcome.status, outcome.backend, outcome.attempts),
      (err: unknown) => {
        logger.error({ err, path: req.path }, 'proxy failure');
        proxy.simple(res, 500, '500 Internal Server Error: quiclb failed to proxy this request.\n');
        log(500);
      },
    );
  };
}
