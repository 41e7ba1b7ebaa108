// The admin endpoints, answered by the shard itself on the normal ports (and on admin.port when set):
//   /health   200/503 + JSON, for external monitors and upstream balancers
//   /stats    JSON for operators
//   /metrics  Prometheus text format
//   /api/test trivial JSON for smoke tests (open: it reveals nothing but the protocol the client used)
// Access control (admin.allowFrom, admin.token) applies to the first three.
import type { FrontRequest, FrontResponse, HeaderList } from '../shared/http-types.ts';
import { isAdminAllowed } from './access.ts';
import type { AdminContext } from './context.ts';
import { buildHealthReport } from './health-report.ts';
import { LatencyRecorder } from './latency.ts';
import { METRICS_CONTENT_TYPE, renderMetrics } from './metrics.ts';
import { buildStats, type StatsInput } from './stats.ts';

export type { AdminContext } from './context.ts';

const PROTECTED = new Set(['/health', '/stats', '/metrics']);
const OPEN = new Set(['/api/test']);
/** Bound on the shards' latency round trip: /stats must answer even if a shard is stuck. */
export const LATENCY_COLLECT_TIMEOUT_MS = 2000;

function pathOnly(target: string): string {
  const q = target.indexOf('?');
  return q === -1 ? target : target.slice(0, q);
}

export function isAdminPath(target: string): boolean {
  const p = pathOnly(target);
  return PROTECTED.has(p) || OPEN.has(p);
}

function header(req: FrontRequest, name: string): string | undefined {
  for (const [k, v] of req.headers) if (k === name) return v;
  return undefined;
}

function send(req: FrontRequest, res: FrontResponse, status: number, contentType: string, body: string, extra: HeaderList = []): void {
  if (res.headersSent) return;
  const bytes = Buffer.from(body, 'utf8');
  const headers: HeaderList = [
    ['content-type', contentType],
    ['cache-control', 'no-store'],
    ['content-length', String(bytes.length)],
    ...extra,
  ];
  const sink = res.respond(status, headers);
  // RFC 9110 §9.3.2: HEAD gets the GET headers and no content.
  sink.end(req.method === 'HEAD' ? undefined : bytes);
}

function sendJson(req: FrontRequest, res: FrontResponse, status: number, value: unknown, extra: HeaderList = []): void {
  send(req, res, status, 'application/json', JSON.stringify(value) + '\n', extra);
}

async function latencyHistograms(ctx: AdminContext): Promise<StatsInput['latency']> {
  const count = ctx.config.loadBalancer.backendServers.length;
  let timer: NodeJS.Timeout | undefined;
  try {
    const snapshots = await Promise.race([
      ctx.collectLatency(),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(Object.assign(new Error('latency collection timed out'), { code: 'QUICLB_ADMIN_LATENCY_TIMEOUT' })), LATENCY_COLLECT_TIMEOUT_MS);
      }),
    ]);
    return LatencyRecorder.merge(snapshots, count);
  } catch (err) {
    // Counters are still worth answering with; latency reads as "no data".
    ctx.logger?.warn({ err }, 'could not collect latency from the shards');
    return LatencyRecorder.merge([], count);
  } finally {
    clearTimeout(timer);
  }
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
    const report = buildHealthReport(ctx.config, ctx.state);
    sendJson(req, res, report.statusCode, report.body);
    return;
  }
  const input: StatsInput = {
    config: ctx.config,
    state: ctx.state,
    startedAt: ctx.startedAt,
    workers: ctx.workers,
    latency: await latencyHistograms(ctx),
    rateLimit: ctx.limiter === undefined ? undefined : { enabled: ctx.limiter.enabled, ...ctx.limiter.stats() },
  };
  if (path === '/stats') sendJson(req, res, 200, buildStats(input));
  else send(req, res, 200, METRICS_CONTENT_TYPE, renderMetrics(input));
}

/**
 * Returns false when the path is not an admin path (the caller proxies it); otherwise answers it and
 * returns a promise that settles once the answer was sent.
 */
export function handleAdmin(req: FrontRequest, res: FrontResponse, ctx: AdminContext): false | Promise<void> {
  const path = pathOnly(req.path);
  if (!PROTECTED.has(path) && !OPEN.has(path)) return false;
  // Admin requests carry no content we use; drain it so the connection stays usable.
  req.body?.resume();
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    sendJson(req, res, 405, { error: `${req.method} is not allowed on ${path}; use GET or HEAD` }, [['allow', 'GET, HEAD']]);
    return Promise.resolve();
  }
  return serve(path, req, res, ctx).catch((err: unknown) => {
    ctx.logger?.error({ err, path }, 'admin endpoint failed');
    if (!res.headersSent) sendJson(req, res, 500, { error: 'internal error' });
    else res.abort(err as Error);
  });
}
