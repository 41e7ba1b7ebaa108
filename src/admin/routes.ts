// The admin endpoints, answered by the shard itself on the normal ports (and on admin.port when set):
//   /health     200/503 + JSON, for external monitors and upstream balancers
//   /stats      JSON for operators
//   /metrics    Prometheus text format
//   /dashboard  the live page, its polling endpoint, login, drain/enable (dashboard/handlers.ts)
//   /api/test   trivial JSON for smoke tests (open: it reveals nothing but the protocol the client used)
//   /cache/purge  POST: removes stored responses from the response cache (cache-purge.ts)
// Access control (admin.allowFrom, admin.token) applies to all but /api/test.
import type { FrontRequest, FrontResponse, HeaderList } from '../shared/http-types.ts';
import { isAdminAllowed } from './access.ts';
import { CACHE_PURGE_PATH, servePurge } from './cache-purge.ts';
import { collectLatencyHistograms } from './collect.ts';
import type { AdminContext } from './context.ts';
import { isDashboardPath, serveDashboard } from './dashboard/handlers.ts';
import { buildHealthReport } from './health-report.ts';
import { METRICS_CONTENT_TYPE, renderMetrics } from './metrics.ts';
import { header, send, sendJson } from './respond.ts';
import { buildStats, type StatsInput } from './stats.ts';

export type { AdminContext } from './context.ts';
export { LATENCY_COLLECT_TIMEOUT_MS } from './collect.ts';

const PROTECTED = new Set(['/health', '/stats', '/metrics']);
const OPEN = new Set(['/api/test']);

function pathOnly(target: string): string {
  const q = target.indexOf('?');
  return q === -1 ? target : target.slice(0, q);
}

export function isAdminPath(target: string): boolean {
  const p = pathOnly(target);
  return PROTECTED.has(p) || OPEN.has(p) || p === CACHE_PURGE_PATH || isDashboardPath(p);
}

async function serve(path: string, req: FrontRequest, res: FrontResponse, ctx: AdminContext): Promise<void> {
  if (path === '/api/test') {
    sendJson(req, res, 200, { ok: true, protocol: req.protocol });
    return;
  }
  const access = isAdminAllowed(req.remoteAddress, header(req, 'authorization'), ctx.config.admin);
  if (!access.ok) {
    // RFC 6750 §3: a 401 for a bearer-protected resource names the scheme.
    const extra: HeaderList = access.status === 401 ? [['www-authenticate', 'Bearer realm="quiclb"']] : [];
    sendJson(req, res, access.status, { error: access.reason }, extra);
    return;
  }
  if (path === '/health') {
    const report = buildHealthReport(ctx.config, ctx.state, ctx.slots);
    sendJson(req, res, report.statusCode, report.body);
    return;
  }
  const input: StatsInput = {
    config: ctx.config,
    slots: ctx.slots,
    configStatus: ctx.configStatus?.(),
    state: ctx.state,
    startedAt: ctx.startedAt,
    workers: ctx.workers,
    latency: await collectLatencyHistograms(ctx),
    rateLimit: ctx.limiter === undefined ? undefined : { enabled: ctx.limiter.enabled, ...ctx.limiter.stats() },
    cache: ctx.cache?.stats(),
  };
  if (path === '/stats') sendJson(req, res, 200, buildStats(input));
  else send(req, res, 200, METRICS_CONTENT_TYPE, renderMetrics(input));
}

function answer(work: Promise<void>, path: string, req: FrontRequest, res: FrontResponse, ctx: AdminContext): Promise<void> {
  return work.catch((err: unknown) => {
    ctx.logger?.error({ err, path }, 'admin endpoint failed');
    if (!res.headersSent) sendJson(req, res, 500, { error: 'internal error' });
    else res.abort(err as Error);
  });
}

/**
 * Returns false when the path is not an admin path (the caller proxies it); otherwise answers it and
 * returns a promise that settles once the answer was sent.
 */
export function handleAdmin(req: FrontRequest, res: FrontResponse, ctx: AdminContext): false | Promise<void> {
  const path = pathOnly(req.path);
  if (isDashboardPath(path)) {
    // Sync throws (a bug) must not escape either: the async wrapper turns them into a rejection.
    return answer((async () => serveDashboard(path, req, res, ctx))(), path, req, res, ctx);
  }
  if (path === CACHE_PURGE_PATH) return answer((async () => servePurge(req, res, ctx))(), path, req, res, ctx);
  if (!PROTECTED.has(path) && !OPEN.has(path)) return false;
  // These requests carry no content we use; drain it so the connection stays usable.
  req.body?.resume();
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    sendJson(req, res, 405, { error: `${req.method} is not allowed on ${path}; use GET or HEAD` }, [['allow', 'GET, HEAD']]);
    return Promise.resolve();
  }
  return answer(serve(path, req, res, ctx), path, req, res, ctx);
}
