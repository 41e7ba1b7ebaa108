// The dashboard's endpoints (routed from ../routes.ts):
//
//   GET  /dashboard                          the page (or, without a session when admin.token is set, the login form)
//   GET  /dashboard/stats                    the /stats document plus `recent` latency, polled by the page every second
//   POST /dashboard/login                    form field `token` -> session cookie, 303 to /dashboard
//   POST /dashboard/logout                   clears the cookie, 303 to /dashboard
//   POST /dashboard/backends/<id>/drain      B_ENABLED = 0: out of rotation, in-flight requests finish
//   POST /dashboard/backends/<id>/enable     B_ENABLED = 1
//
// Who may: as for /stats, the client address must be in admin.allowFrom (403 otherwise), and with
// admin.token either `Authorization: Bearer <token>` or a session cookie from the login form.
//
// CSRF: a state change (drain, enable) is accepted with the bearer token (a header no other site can
// make a browser send), or with the session cookie only when all three hold:
//   1. the cookie itself arrives: SameSite=Strict, so a browser never attaches it to a request that
//      another site started, not even a top-level form POST;
//   2. the request carries the session's CSRF token in X-Quiclb-Csrf: a page of another origin cannot
//      read it, and a custom header on a cross-origin fetch needs a CORS preflight quiclb never grants;
//   3. its Origin is quiclb's own (scheme://authority of the request): every current browser sends
//      Origin on POST, so a missing one (or "null") is refused too.
// Without admin.token, loading the page opens the session (the address check is the only login), so
// the same three checks protect an operator whose browser sits inside allowFrom from a hostile page
// that posts to 127.0.0.1. Scripts without a browser use the bearer token (set admin.token).
import type { Config } from '../../config/types.ts';
import type { FrontRequest, FrontResponse, HeaderList } from '../../shared/http-types.ts';
import { B_ENABLED, B_HEALTHY, slotAt, type SharedState } from '../../shared/state.ts';
import { isAddressAllowed, tokensEqual } from '../access.ts';
import { collectLatencyHistograms } from '../collect.ts';
import type { AdminContext } from '../context.ts';
import { BODY_TOO_LARGE_CODE, header, readSmallBody, send, sendJson } from '../respond.ts';
import { buildStats } from '../stats.ts';
import { DASHBOARD_CSP, dashboardHtml, LOGIN_CSP, loginHtml } from './assets.ts';
import { RecentLatencyWindow } from './recent-latency.ts';
import { cookieValue, SESSION_COOKIE, sessionCookieHeader, SessionKeys, type Session } from './session.ts';

export const CSRF_HEADER = 'x-quiclb-csrf';
const LOGIN_BODY_LIMIT = 4096;
const BACKEND_ACTION_RE = /^\/dashboard\/backends\/([^/]+)\/(drain|enable)$/;

export function isDashboardPath(path: string): boolean {
  return path === '/dashboard' || path === '/dashboard/stats' || path === '/dashboard/login' || path === '/dashboard/logout' || BACKEND_ACTION_RE.test(path);
}

/**
 * Per shard (its SharedState outlives the AdminContext of each configuration generation): the session key,
 * remade when a reload changes admin.token (sessions end with the token they were opened with), and the
 * recent-latency base.
 */
interface DashboardState {
  token: string | undefined;
  keys: SessionKeys;
  recent: RecentLatencyWindow;
}
const states = new WeakMap<SharedState, DashboardState>();

function stateOf(ctx: AdminContext): DashboardState {
  const token = ctx.config.admin.token;
  let s = states.get(ctx.state);
  if (s === undefined) {
    s = { token, keys: new SessionKeys(ctx.state.secret(), token), recent: new RecentLatencyWindow() };
    states.set(ctx.state, s);
  } else if (s.token !== token) {
    s.token = token;
    s.keys = new SessionKeys(ctx.state.secret(), token);
  }
  return s;
}

type Auth =
  | { ok: true; via: 'bearer' | 'session' | 'open'; session?: Session }
  | { ok: false; status: 401 | 403; reason: string };

function tokenSet(config: Config): boolean {
  return config.admin.token !== undefined && config.admin.token !== '';
}

function authenticate(req: FrontRequest, ctx: AdminContext): Auth {
  const admin = ctx.config.admin;
  if (!isAddressAllowed(req.remoteAddress, admin.allowFrom)) {
    return { ok: false, status: 403, reason: `client address ${req.remoteAddress} is not in admin.allowFrom` };
  }
  const authorization = header(req, 'authorization');
  if (tokenSet(ctx.config) && authorization !== undefined) {
    const m = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(authorization);
    if (m === null || !tokensEqual(m[1], admin.token!)) return { ok: false, status: 401, reason: 'the bearer token does not match admin.token' };
    return { ok: true, via: 'bearer' };
  }
  const cookie = cookieValue(req.headers, SESSION_COOKIE);
  const session = cookie === undefined ? undefined : stateOf(ctx).keys.verify(cookie);
  if (session !== undefined) return { ok: true, via: 'session', session };
  if (!tokenSet(ctx.config)) return { ok: true, via: 'open' };
  return { ok: false, status: 401, reason: 'admin.token is set: log in at /dashboard or send "Authorization: Bearer <token>"' };
}

/** RFC 6454 §7: the Origin a browser sends must be this request's own scheme://authority. */
export function isSameOrigin(req: FrontRequest): boolean {
  const origin = header(req, 'origin');
  if (origin === undefined || origin === 'null' || req.authority === '') return false;
  try {
    return new URL(origin).origin === new URL(`${req.scheme}://${req.authority}`).origin;
  } catch {
    return false;
  }
}

const PAGE_HEADERS = (csp: string): HeaderList => [
  ['content-security-policy', csp],
  ['x-frame-options', 'DENY'],
  ['x-content-type-options', 'nosniff'],
  // Not no-referrer: with it, browsers send "Origin: null" on the login form's POST (Fetch §3.2.5),
  // which the Origin check below must refuse; same-origin keeps Origin and sends nothing elsewhere.
  ['referrer-policy', 'same-origin'],
];

function refuse(req: FrontRequest, res: FrontResponse, auth: { status: 401 | 403; reason: string }): void {
  // RFC 9110 §15.5.2: a 401 names a scheme the client can use.
  const extra: HeaderList = auth.status === 401 ? [['www-authenticate', 'Bearer realm="quiclb"']] : [];
  sendJson(req, res, auth.status, { error: auth.reason }, extra);
}

function redirect(req: FrontRequest, res: FrontResponse, location: string, extra: HeaderList = []): void {
  // 303: the browser follows a POST's answer with a GET (RFC 9110 §15.4.4).
  send(req, res, 303, 'text/plain; charset=utf-8', `See ${location}\n`, [['location', location], ...extra]);
}

function servePage(req: FrontRequest, res: FrontResponse, ctx: AdminContext): void {
  const auth = authenticate(req, ctx);
  if (!auth.ok) {
    if (auth.status === 403) {
      send(req, res, 403, 'text/plain; charset=utf-8', `403 Forbidden: ${auth.reason}.\n`);
      return;
    }
    send(req, res, 401, 'text/html; charset=utf-8', loginHtml(), [['www-authenticate', 'Bearer realm="quiclb"'], ...PAGE_HEADERS(LOGIN_CSP)]);
    return;
  }
  const extra: HeaderList = [...PAGE_HEADERS(DASHBOARD_CSP)];
  let session = auth.session;
  if (session === undefined) {
    // Open access (no token) or a bearer request: a session carries the CSRF token the page needs.
    const made = stateOf(ctx).keys.create();
    session = made.session;
    extra.push(['set-cookie', sessionCookieHeader(made.cookieValue, req.scheme === 'https')]);
  }
  send(req, res, 200, 'text/html; charset=utf-8', dashboardHtml(session.csrf, tokenSet(ctx.config)), extra);
}

async function serveStats(req: FrontRequest, res: FrontResponse, ctx: AdminContext): Promise<void> {
  const auth = authenticate(req, ctx);
  if (!auth.ok) {
    refuse(req, res, auth);
    return;
  }
  const latency = await collectLatencyHistograms(ctx);
  const stats = buildStats({
    config: ctx.config,
    slots: ctx.slots,
    configStatus: ctx.configStatus?.(),
    state: ctx.state,
    startedAt: ctx.startedAt,
    workers: ctx.workers,
    latency,
    cache: ctx.cache?.stats(),
  });
  // The window is kept by slot; the page reads it in the order of stats.backends.
  const recent = stateOf(ctx).recent.observe(latency);
  const none = { p50: 0, p99: 0, count: 0 };
  const backends = ctx.config.loadBalancer.backendServers.map((_, i) => recent.backends[slotAt(ctx.slots, i)] ?? none);
  sendJson(req, res, 200, { ...stats, recent: { windowMs: recent.windowMs, backends } });
}

async function login(req: FrontRequest, res: FrontResponse, ctx: AdminContext): Promise<void> {
  if (!isAddressAllowed(req.remoteAddress, ctx.config.admin.allowFrom)) {
    req.body?.resume();
    send(req, res, 403, 'text/plain; charset=utf-8', `403 Forbidden: client address ${req.remoteAddress} is not in admin.allowFrom.\n`);
    return;
  }
  let body: Buffer;
  try {
    body = await readSmallBody(req, LOGIN_BODY_LIMIT);
  } catch (err) {
    if ((err as { code?: string }).code !== BODY_TOO_LARGE_CODE) throw err;
    sendJson(req, res, 413, { error: `the login form is at most ${LOGIN_BODY_LIMIT} bytes` });
    return;
  }
  const loginPage = (status: number, message: string) =>
    send(req, res, status, 'text/html; charset=utf-8', loginHtml(message), [['www-authenticate', 'Bearer realm="quiclb"'], ...PAGE_HEADERS(LOGIN_CSP)]);
  // Login CSRF: another site must not log a browser into a session of its choosing.
  if (!isSameOrigin(req)) {
    loginPage(403, 'This form must be sent from the quiclb page itself (the Origin header did not match).');
    return;
  }
  if (!tokenSet(ctx.config)) {
    redirect(req, res, '/dashboard');
    return;
  }
  const token = new URLSearchParams(body.toString('utf8')).get('token') ?? '';
  if (token === '' || !tokensEqual(token, ctx.config.admin.token!)) {
    ctx.logger?.warn({ client: req.remoteAddress }, 'dashboard login with a wrong admin token');
    loginPage(401, 'That is not the admin token.');
    return;
  }
  const made = stateOf(ctx).keys.create();
  ctx.logger?.info({ client: req.remoteAddress }, 'dashboard login');
  redirect(req, res, '/dashboard', [['set-cookie', sessionCookieHeader(made.cookieValue, req.scheme === 'https')]]);
}

function logout(req: FrontRequest, res: FrontResponse, ctx: AdminContext): void {
  req.body?.resume();
  if (!isAddressAllowed(req.remoteAddress, ctx.config.admin.allowFrom) || !isSameOrigin(req)) {
    sendJson(req, res, 403, { error: 'log out from the quiclb page itself (allowFrom address and same Origin)' });
    return;
  }
  redirect(req, res, '/dashboard', [['set-cookie', sessionCookieHeader('', req.scheme === 'https', 0)]]);
}

function backendAction(req: FrontRequest, res: FrontResponse, ctx: AdminContext, rawId: string, action: 'drain' | 'enable'): void {
  req.body?.resume();
  const auth = authenticate(req, ctx);
  if (!auth.ok) {
    refuse(req, res, auth);
    return;
  }
  if (auth.via !== 'bearer') {
    if (auth.via === 'open') {
      refuse(req, res, { status: 403, reason: 'no dashboard session: load /dashboard first (its session carries the CSRF token)' });
      return;
    }
    if (!isSameOrigin(req)) {
      refuse(req, res, { status: 403, reason: 'cross-origin request refused: Origin must be this quiclb' });
      return;
    }
    if (!stateOf(ctx).keys.csrfMatches(auth.session!, header(req, CSRF_HEADER))) {
      refuse(req, res, { status: 403, reason: `missing or wrong ${CSRF_HEADER} header` });
      return;
    }
  }
  let id: string;
  try {
    id = decodeURIComponent(rawId);
  } catch {
    id = rawId;
  }
  const position = ctx.config.loadBalancer.backendServers.findIndex((b) => b.id === id);
  const index = slotAt(ctx.slots, position);
  if (position === -1) {
    sendJson(req, res, 404, { error: `no backend with id ${JSON.stringify(id)}` });
    return;
  }
  const enabled = action === 'enable';
  // B_ENABLED apart from B_HEALTHY: a drain is the operator's choice, not a failure. Every shard's
  // balancer reads it on its next pick, /stats at once, and the active checker on its next round.
  const before = ctx.state.setBackendGauge(index, B_ENABLED, enabled ? 1 : 0);
  const changed = before !== (enabled ? 1 : 0);
  if (changed) ctx.logger?.warn({ backend: id, action, client: req.remoteAddress, via: auth.via }, enabled ? 'backend enabled by an operator' : 'backend drained by an operator');
  sendJson(req, res, 200, { id, enabled, healthy: ctx.state.backendGauge(index, B_HEALTHY) === 1, changed });
}

const ALLOWED: Record<string, string> = {
  '/dashboard': 'GET, HEAD',
  '/dashboard/stats': 'GET, HEAD',
  '/dashboard/login': 'POST',
  '/dashboard/logout': 'POST',
};

/** Answers a path for which isDashboardPath() is true. Rejects only on a bug (the caller answers 500). */
export async function serveDashboard(path: string, req: FrontRequest, res: FrontResponse, ctx: AdminContext): Promise<void> {
  const action = BACKEND_ACTION_RE.exec(path);
  const allow = action !== null ? 'POST' : ALLOWED[path];
  if (!allow.split(', ').includes(req.method)) {
    req.body?.resume();
    sendJson(req, res, 405, { error: `${req.method} is not allowed on ${path}; use ${allow}` }, [['allow', allow]]);
    return;
  }
  if (action !== null) return backendAction(req, res, ctx, action[1], action[2] as 'drain' | 'enable');
  if (path === '/dashboard') {
    req.body?.resume();
    return servePage(req, res, ctx);
  }
  if (path === '/dashboard/stats') {
    req.body?.resume();
    return serveStats(req, res, ctx);
  }
  if (path === '/dashboard/login') return login(req, res, ctx);
  return logout(req, res, ctx);
}
