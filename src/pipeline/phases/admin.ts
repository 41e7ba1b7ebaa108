// /health, /stats, /metrics, /dashboard, /cache/purge, /api/test. With admin.port set they are served on that port only (the public
// ports pass those paths to the backends like any other), and the admin port serves nothing else.
import { handleAdmin, isAdminPath, type AdminContext } from '../../admin/routes.ts';
import type { Exchange } from '../exchange.ts';
import { exchangeResponse } from '../exchange-response.ts';
import type { Phase } from '../phase.ts';

export function adminPhase(ctx: AdminContext): Phase {
  const adminPort = ctx.config.admin.port;
  return {
    name: 'admin',
    request(ex: Exchange): boolean | Promise<boolean> {
      const onAdminPort = adminPort > 0 && ex.req.localPort === adminPort;
      if (adminPort > 0 && !onAdminPort) return false;
      if (isAdminPath(ex.req.path)) {
        ex.answeredBy = 'admin';
        const answered = handleAdmin(ex.req, exchangeResponse(ex), ctx);
        if (answered !== false) return answered.then(() => true);
      }
      if (!onAdminPort) return false;
      ex.req.body?.resume();
      ex.answer(404, 'Not found: the admin port serves /health, /stats, /metrics, /dashboard, /cache/purge and /api/test only.\n');
      return true;
    },
  };
}
