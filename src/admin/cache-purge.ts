// POST /cache/purge[?prefix=PREFIX]: removes stored responses from the shared response cache (every shard
// uses one store, so one shard's purge is everyone's). Without a prefix everything goes; a prefix starting
// with "/" matches paths on any host ("/theme/"), one starting with "http://" or "https://" whole URLs
// ("https://moodle.example.edu/theme/").
//
// Who may: as for /stats, a client in admin.allowFrom and, with admin.token, `Authorization: Bearer <token>`.
// CSRF: a purge is a state change that costs the backends a refill, and without admin.token the address
// check is the only gate, so a hostile page open in an operator's browser (inside allowFrom) could post a
// form here. Browsers always send Origin on a POST (Fetch standard), scripts and curl do not: a request with
// an Origin (or a Sec-Fetch-Site other than "none") is refused, whichever site it names. The endpoint is for
// scripts (curl with the bearer token) and `quiclb cache purge` (the same from the command line, on the store
// file); the dashboard's session and CSRF token are not accepted here, since it has no purge button.
import type { FrontRequest, FrontResponse, HeaderList } from '../shared/http-types.ts';
import { isAdminAllowed } from './access.ts';
import type { AdminContext } from './context.ts';
import { header, sendJson } from './respond.ts';

export const CACHE_PURGE_PATH = '/cache/purge';

/** Why a purge prefix is refused, or undefined when it is usable. */
export function purgePrefixProblem(prefix: string): string | undefined {
  if (prefix === '' || prefix.startsWith('/') || prefix.startsWith('http://') || prefix.startsWith('https://')) return undefined;
  return `prefix ${JSON.stringify(prefix)} matches nothing: give a path ("/theme/") or a URL ("https://moodle.example.edu/theme/")`;
}

/** Answers POST /cache/purge. */
export function servePurge(req: FrontRequest, res: FrontResponse, ctx: AdminContext): void {
  req.body?.resume();
  if (req.method !== 'POST') {
    sendJson(req, res, 405, { error: `${req.method} is not allowed on ${CACHE_PURGE_PATH}; use POST` }, [['allow', 'POST']]);
    return;
  }
  const access = isAdminAllowed(req.remoteAddress, header(req, 'authorization'), ctx.config.admin);
  if (!access.ok) {
    const extra: HeaderList = access.status === 401 ? [['www-authenticate', 'Bearer realm="quiclb"']] : [];
    sendJson(req, res, access.status, { error: access.reason }, extra);
    return;
  }
  const site = header(req, 'sec-fetch-site');
  if (header(req, 'origin') !== undefined || (site !== undefined && site !== 'none')) {
    sendJson(req, res, 403, { error: 'a purge from a web page is refused (CSRF): use curl with the bearer token, or `quiclb cache purge`' });
    return;
  }
  if (ctx.cache === undefined) {
    sendJson(req, res, 404, { error: 'the response cache is off (cache.enabled or moodle.enableCaching)' });
    return;
  }
  const q = req.path.indexOf('?');
  const prefix = q === -1 ? '' : (new URLSearchParams(req.path.slice(q + 1)).get('prefix') ?? '');
  const problem = purgePrefixProblem(prefix);
  if (problem !== undefined) {
    sendJson(req, res, 400, { error: problem });
    return;
  }
  const purged = ctx.cache.purge(prefix === '' ? undefined : prefix);
  ctx.logger?.warn({ client: req.remoteAddress, prefix: prefix === '' ? '(everything)' : prefix, purged }, 'response cache purged');
  sendJson(req, res, 200, { purged, prefix: prefix === '' ? null : prefix });
}
