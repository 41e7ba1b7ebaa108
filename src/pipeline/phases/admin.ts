// /health, /stats, /metrics, /api/test. With admin.port set they are served on that port only (the public
// ports pass those paths to the backends like any other), and the admin port serves nothing else.
import type { FrontResponse } from '../../shared/http-types.ts';
import { handleAdmin, isAdminPath, type AdminContext } from '../../admin/routes.ts';
import type { Exchange } from '../exchange.ts';
import type { Phase } from '../phase.ts';

/** The admin endpoints answer through the exchange, so their status is logged and filtered like any other. */
function throughExchange(ex: Exchange): FrontResponse {
  const res = ex.res;
  return {
    respond: (status, headers) => ex.respond(status, headers),
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
}

export function adminPhase(ctx: AdminContext): Phase {
  const adminPort = ctx.config.admin.port;
  return {
    name: 'admin',
    request(ex: Exchange): boolean | Promise<boolean> {
      const onAdminPort = adminPort > 0 && ex.req.localPort === adminPort;
      if (adminPort > 0 && !onAdminPort) return false;
      if (isAdminPath(ex.req.path)) {
        ex.answeredBy = 'admin';
        const answered = handleAdmin(ex.req, throughExchange(ex), ctx);
        if (answered !== false) return answered.then(() => true);
      }
      if (!onAdminPort) return false;
      ex.req.body?.resume();
      ex.answer(404, 'Not found: the admin port serves /health, /stats, /metrics, /dashboard and /api/test only.\n');
      return true;
    },
  };
}
