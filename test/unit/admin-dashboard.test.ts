// The dashboard's routes through handleAdmin and the FrontRequest/FrontResponse contract: login ->
// cookie, wrong tokens refused, every CSRF condition enforced, drain/enable flipping B_ENABLED.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import type { Config } from '../../src/config/types.ts';
import type { BodySink, FrontRequest, FrontResponse, HeaderList } from '../../src/shared/http-types.ts';
import { handleAdmin, isAdminPath, type AdminContext } from '../../src/admin/routes.ts';
import { SESSION_TTL_S, SessionKeys } from '../../src/admin/dashboard/session.ts';
import { B_ENABLED, B_HEALTHY, SharedState } from '../../src/shared/state.ts';

interface Recorded {
  status: number;
  headers: HeaderList;
  body: string;
}

const get = (r: Recorded, name: string): string | undefined => r.headers.find(([k]) => k === name)?.[1];

type Init = Partial<Omit<FrontRequest, 'body'>> & { path: string; body?: string };

function exchange(ctx: AdminContext, init: Init): Promise<Recorded> {
  const { body, ...rest } = init;
  const req: FrontRequest = {
    protocol: 'HTTP/1.1',
    method: 'GET',
    scheme: 'http',
    authority: '127.0.0.1:8080',
    headers: [],
    remoteAddress: '127.0.0.1',
    remotePort: 50000,
    localPort: 8080,
    connectionKey: 'c1',
    shard: 0,
    ...rest,
    body: body === undefined ? null : Readable.from([Buffer.from(body)]),
  };
  return new Promise((resolve) => {
    let sent = false;
    const res: FrontResponse = {
      respond(status: number, headers: HeaderList): BodySink {
        assert.equal(sent, false, 'respond() called once');
        sent = true;
        const chunks: Uint8Array[] = [];
        return {
          write(chunk) {
            chunks.push(chunk);
            return true;
          },
          end(chunk) {
            if (chunk) chunks.push(chunk);
            resolve({ status, headers, body: Buffer.concat(chunks).toString('utf8') });
          },
          onDrain: (cb) => process.nextTick(cb),
        };
      },
      inform() {},
      abort(reason?: Error) {
        throw reason ?? new Error('aborted');
      },
      get headersSent() {
        return sent;
      },
      get finished() {
        return sent;
      },
      onClientAbort() {},
    };
    assert.notEqual(handleAdmin(req, res, ctx), false, `${init.path} is a dashboard path`);
  });
}

function context(admin: Partial<Config['admin']> = {}, state = new SharedState()): AdminContext {
  const config = {
    loadBalancer: {
      backendServers: [
        { id: 'web1', host: '127.0.0.1', port: 8081, weight: 3, healthy: true, maxConnections: 0, group: 'default' },
        { id: 'web.2', host: '127.0.0.1', port: 8082, weight: 1, healthy: true, maxConnections: 0, group: 'default' },
      ],
    },
    admin: { allowFrom: ['127.0.0.0/8', '::1/128'], port: 0, ...admin },
  } as unknown as Config;
  state.initBackend(0, true);
  state.initBackend(1, true);
  return { config, state, startedAt: Date.now(), workers: 2, collectLatency: async () => [] };
}

const TOKEN = 'dash-token-123';
const CSRF = 'x-quiclb-csrf';
const ORIGIN: HeaderList = [['origin', 'http://127.0.0.1:8080']];
const FORM: HeaderList = [['content-type', 'application/x-www-form-urlencoded'], ...ORIGIN];

/** Logs in; returns the Cookie header value and the page's CSRF token. */
async function loginSession(ctx: AdminContext): Promise<{ cookie: string; csrf: string }> {
  const r = await exchange(ctx, { method: 'POST', path: '/dashboard/login', headers: FORM, body: `token=${encodeURIComponent(TOKEN)}` });
  assert.equal(r.status, 303);
  const setCookie = get(r, 'set-cookie') ?? '';
  const cookie = setCookie.split(';')[0];
  const page = await exchange(ctx, { path: '/dashboard', headers: [['cookie', `other=1; ${cookie}`]] });
  assert.equal(page.status, 200);
  const csrf = /<meta name="quiclb-csrf" content="([^"]+)">/.exec(page.body)?.[1];
  assert.ok(csrf, 'the page carries its CSRF token');
  return { cookie, csrf };
}

test('every dashboard path is an admin path; nothing else under /dashboard is taken from Moodle', () => {
  for (const p of ['/dashboard', '/dashboard?x=1', '/dashboard/stats', '/dashboard/login', '/dashboard/logout', '/dashboard/backends/web1/drain', '/dashboard/backends/web1/enable']) {
    assert.equal(isAdminPath(p), true, p);
  }
  for (const p of ['/dashboardx', '/dashboard/', '/dashboard/other', '/dashboard/backends/web1/delete', '/dashboard/backends/a/b/drain', '/my/']) {
    assert.equal(isAdminPath(p), false, p);
  }
});

test('with admin.token: no session -> the login form (401); a wrong token is refused; the right one sets an HttpOnly SameSite=Strict cookie', async () => {
  const ctx = context({ token: TOKEN });
  const first = await exchange(ctx, { path: '/dashboard' });
  assert.equal(first.status, 401);
  assert.match(get(first, 'content-type') ?? '', /^text\/html/);
  assert.match(first.body, /<form[^>]+method="post" action="\/dashboard\/login"/);
  assert.doesNotMatch(first.body, /quiclb-csrf/);
  assert.match(get(first, 'content-security-policy') ?? '', /default-src 'none'/);

  const wrong = await exchange(ctx, { method: 'POST', path: '/dashboard/login', headers: FORM, body: 'token=nope-nope-nope' });
  assert.equal(wrong.status, 401);
  assert.equal(get(wrong, 'set-cookie'), undefined);
  assert.match(wrong.body, /not the admin token/);

  const empty = await exchange(ctx, { method: 'POST', path: '/dashboard/login', headers: FORM, body: '' });
  assert.equal(empty.status, 401);

  const ok = await exchange(ctx, { method: 'POST', path: '/dashboard/login', headers: FORM, body: `token=${TOKEN}` });
  assert.equal(ok.status, 303);
  assert.equal(get(ok, 'location'), '/dashboard');
  const cookie = get(ok, 'set-cookie') ?? '';
  assert.match(cookie, /^quiclb_dashboard=v1\.\d+\.[\w-]+\.[\w-]+; Path=\/dashboard; Max-Age=43200; HttpOnly; SameSite=Strict$/);
  assert.ok(!cookie.includes(TOKEN), 'the cookie is a signed session, not the token');

  // Over HTTPS the cookie is also Secure.
  const tls = await exchange(ctx, { method: 'POST', path: '/dashboard/login', scheme: 'https', authority: 'lb.example.org', headers: [['origin', 'https://lb.example.org'], ...FORM.slice(0, 1)], body: `token=${TOKEN}` });
  assert.match(get(tls, 'set-cookie') ?? '', /; Secure$/);
});

test('login is refused from another origin, without Origin, from outside allowFrom, and above 4 KiB', async () => {
  const ctx = context({ token: TOKEN });
  for (const origin of [[['origin', 'https://evil.example']], [['origin', 'null']], []] as HeaderList[]) {
    const r = await exchange(ctx, { method: 'POST', path: '/dashboard/login', headers: [['content-type', 'application/x-www-form-urlencoded'], ...origin], body: `token=${TOKEN}` });
    assert.equal(r.status, 403, JSON.stringify(origin));
    assert.equal(get(r, 'set-cookie'), undefined);
  }
  const outside = await exchange(ctx, { method: 'POST', path: '/dashboard/login', remoteAddress: '198.51.100.9', headers: FORM, body: `token=${TOKEN}` });
  assert.equal(outside.status, 403);
  const big = await exchange(ctx, { method: 'POST', path: '/dashboard/login', headers: FORM, body: `token=${'x'.repeat(5000)}` });
  assert.equal(big.status, 413);
});

test('the logged-in page: CSRF token, CSP that allows exactly its inline script and style, no framing', async () => {
  const ctx = context({ token: TOKEN });
  const { cookie, csrf } = await loginSession(ctx);
  const page = await exchange(ctx, { path: '/dashboard', headers: [['cookie', cookie]] });
  const csp = get(page, 'content-security-policy') ?? '';
  const script = /<script>([\s\S]*)<\/script>/.exec(page.body)?.[1] ?? '';
  const style = /<style>([\s\S]*)<\/style>/.exec(page.body)?.[1] ?? '';
  const sha = (s: string) => createHash('sha256').update(s).digest('base64');
  assert.ok(script.length > 1000 && style.length > 500);
  assert.ok(csp.includes(`script-src 'sha256-${sha(script)}'`), csp);
  assert.ok(csp.includes(`style-src 'sha256-${sha(style)}'`), csp);
  assert.match(csp, /frame-ancestors 'none'/);
  assert.equal(get(page, 'x-frame-options'), 'DENY');
  assert.equal(get(page, 'cache-control'), 'no-store');
  assert.doesNotMatch(page.body, /<(?:script|link)[^>]+(?:src|href)=/, 'nothing loaded from elsewhere');
  assert.match(page.body, /action="\/dashboard\/logout"/);
  assert.ok(page.body.includes(`value="${csrf}"`), 'the logout form carries the CSRF token');
  // HEAD: same headers, no body.
  const head = await exchange(ctx, { method: 'HEAD', path: '/dashboard', headers: [['cookie', cookie]] });
  assert.equal(head.status, 200);
  assert.equal(head.body, '');
});

test('/dashboard/stats: the /stats document plus weights and recent latency, for a session or the bearer token only', async () => {
  const ctx = context({ token: TOKEN });
  const { cookie } = await loginSession(ctx);
  const r = await exchange(ctx, { path: '/dashboard/stats', headers: [['cookie', cookie]] });
  assert.equal(r.status, 200);
  const s = JSON.parse(r.body);
  assert.deepEqual(s.backends.map((b: { id: string; weight: number }) => [b.id, b.weight]), [['web1', 3], ['web.2', 1]]);
  assert.equal(s.recent.windowMs, 0);
  assert.equal(s.recent.backends.length, 2);
  assert.ok('protocols' in s && 'shards' in s && 'quic' in s && 'compression' in s);
  assert.equal((await exchange(ctx, { path: '/dashboard/stats', headers: [['authorization', `Bearer ${TOKEN}`]] })).status, 200);
  const none = await exchange(ctx, { path: '/dashboard/stats' });
  assert.equal(none.status, 401);
  assert.match(get(none, 'www-authenticate') ?? '', /^Bearer/);
  // A tampered cookie (one character of the signature changed) is no session.
  const [name, value] = cookie.split('=');
  const tampered = `${name}=${value.slice(0, -1)}${value.endsWith('A') ? 'B' : 'A'}`;
  assert.equal((await exchange(ctx, { path: '/dashboard/stats', headers: [['cookie', tampered]] })).status, 401);
  assert.equal((await exchange(ctx, { path: '/dashboard/stats', headers: [['authorization', 'Bearer wrong-wrong']] })).status, 401);
  assert.equal((await exchange(ctx, { path: '/dashboard/stats', remoteAddress: '203.0.113.1', headers: [['cookie', cookie]] })).status, 403);
});

test('drain and enable with the session: B_ENABLED flips, /dashboard/stats shows it, health is untouched', async () => {
  const ctx = context({ token: TOKEN });
  const { cookie, csrf } = await loginSession(ctx);
  const post = (path: string) => exchange(ctx, { method: 'POST', path, headers: [['cookie', cookie], [CSRF, csrf], ...ORIGIN] });
  let r = await post('/dashboard/backends/web.2/drain');
  assert.equal(r.status, 200);
  assert.deepEqual(JSON.parse(r.body), { id: 'web.2', enabled: false, healthy: true, changed: true });
  assert.equal(ctx.state.backendGauge(1, B_ENABLED), 0);
  assert.equal(ctx.state.backendGauge(1, B_HEALTHY), 1, 'a drain is not a failure');
  assert.equal(ctx.state.backendGauge(0, B_ENABLED), 1);
  const stats = JSON.parse((await exchange(ctx, { path: '/dashboard/stats', headers: [['cookie', cookie]] })).body);
  assert.deepEqual(stats.backends.map((b: { enabled: boolean }) => b.enabled), [true, false]);
  r = await post('/dashboard/backends/web.2/drain');
  assert.equal(JSON.parse(r.body).changed, false);
  r = await post('/dashboard/backends/web.2/enable');
  assert.equal(r.status, 200);
  assert.equal(ctx.state.backendGauge(1, B_ENABLED), 1);
  assert.equal((await post('/dashboard/backends/nope/drain')).status, 404);
  const wrongMethod = await exchange(ctx, { path: '/dashboard/backends/web1/drain', headers: [['cookie', cookie]] });
  assert.equal(wrongMethod.status, 405);
  assert.equal(get(wrongMethod, 'allow'), 'POST');
});


test('CSRF: a session POST without the token, with a wrong or foreign token, or from another origin changes nothing', async () => {
  const ctx = context({ token: TOKEN });
  const { cookie, csrf } = await loginSession(ctx);
  const other = await loginSession(ctx);
  assert.notEqual(other.csrf, csrf);
  const cases: Array<[string, HeaderList]> = [
    ['no CSRF header', [['cookie', cookie], ...ORIGIN]],
    ['wrong CSRF token', [['cookie', cookie], [CSRF, 'x'.repeat(43)], ...ORIGIN]],
    ["another session's CSRF token", [['cookie', cookie], [CSRF, other.csrf], ...ORIGIN]],
    ['foreign Origin', [['cookie', cookie], [CSRF, csrf], ['origin', 'https://evil.example']]],
    ['same host, other port', [['cookie', cookie], [CSRF, csrf], ['origin', 'http://127.0.0.1:9999']]],
    ['no Origin', [['cookie', cookie], [CSRF, csrf]]],
    ['Origin null', [['cookie', cookie], [CSRF, csrf], ['origin', 'null']]],
  ];
  for (const [label, headers] of cases) {
    const r = await exchange(ctx, { method: 'POST', path: '/dashboard/backends/web1/drain', headers });
    assert.equal(r.status, 403, label);
    assert.equal(ctx.state.backendGauge(0, B_ENABLED), 1, `${label}: still enabled`);
  }
  // No cookie at all: the token is required.
  const anonymous = await exchange(ctx, { method: 'POST', path: '/dashboard/backends/web1/drain', headers: [[CSRF, csrf], ...ORIGIN] });
  assert.equal(anonymous.status, 401);
  assert.equal(ctx.state.backendGauge(0, B_ENABLED), 1);
});

test('the bearer token drains without a session (scripts); a wrong one is refused; allowFrom still applies', async () => {
  const ctx = context({ token: TOKEN });
  const bearer = (t: string, remoteAddress = '127.0.0.1') =>
    exchange(ctx, { method: 'POST', path: '/dashboard/backends/web1/drain', remoteAddress, headers: [['authorization', `Bearer ${t}`]] });
  assert.equal((await bearer('wrong-token-xyz')).status, 401);
  assert.equal(ctx.state.backendGauge(0, B_ENABLED), 1);
  assert.equal((await bearer(TOKEN, '192.0.2.10')).status, 403);
  assert.equal(ctx.state.backendGauge(0, B_ENABLED), 1);
  assert.equal((await bearer(TOKEN)).status, 200);
  assert.equal(ctx.state.backendGauge(0, B_ENABLED), 0);
});

test('without admin.token: the page opens a session itself; a POST still needs that session, its CSRF token and the Origin', async () => {
  const ctx = context();
  const page = await exchange(ctx, { path: '/dashboard' });
  assert.equal(page.status, 200);
  assert.doesNotMatch(page.body, /dashboard\/logout/, 'nothing to log out of');
  const cookie = (get(page, 'set-cookie') ?? '').split(';')[0];
  const csrf = /<meta name="quiclb-csrf" content="([^"]+)">/.exec(page.body)?.[1] ?? '';
  assert.match(cookie, /^quiclb_dashboard=v1\./);
  // A hostile page posting to 127.0.0.1 from the operator's browser: no cookie (SameSite=Strict), no token.
  const forged = await exchange(ctx, { method: 'POST', path: '/dashboard/backends/web1/drain', headers: [['origin', 'https://evil.example'], ['content-type', 'application/x-www-form-urlencoded']], body: 'x=1' });
  assert.equal(forged.status, 403);
  assert.equal(ctx.state.backendGauge(0, B_ENABLED), 1);
  const ok = await exchange(ctx, { method: 'POST', path: '/dashboard/backends/web1/drain', headers: [['cookie', cookie], [CSRF, csrf], ...ORIGIN] });
  assert.equal(ok.status, 200);
  assert.equal(ctx.state.backendGauge(0, B_ENABLED), 0);
  // The page keeps the session it has instead of minting one per load.
  const again = await exchange(ctx, { path: '/dashboard', headers: [['cookie', cookie]] });
  assert.equal(get(again, 'set-cookie'), undefined);
  assert.equal((await exchange(ctx, { path: '/dashboard', remoteAddress: '203.0.113.7' })).status, 403);
});

test('logout clears the cookie; sessions are bound to the process secret, the token, and expire', async () => {
  const ctx = context({ token: TOKEN });
  const out = await exchange(ctx, { method: 'POST', path: '/dashboard/logout', headers: FORM, body: 'csrf=x' });
  assert.equal(out.status, 303);
  assert.match(get(out, 'set-cookie') ?? '', /^quiclb_dashboard=; Path=\/dashboard; Max-Age=0; HttpOnly; SameSite=Strict$/);

  const secret = ctx.state.secret();
  assert.equal(secret.length, 32);
  assert.deepEqual(new SharedState(ctx.state.buffer).secret(), secret, 'every shard sees the same secret');
  assert.notDeepEqual(new SharedState().secret(), secret, 'another process draws another');
  const keys = new SessionKeys(secret, TOKEN);
  const now = Date.now();
  const { cookieValue, session } = keys.create(now);
  assert.deepEqual(keys.verify(cookieValue, now), session);
  assert.equal(keys.verify(cookieValue, now + SESSION_TTL_S * 1000 + 1), undefined, 'expired');
  assert.equal(new SessionKeys(secret, 'another-token').verify(cookieValue, now), undefined, 'a new token ends old sessions');
  assert.equal(new SessionKeys(new SharedState().secret(), TOKEN).verify(cookieValue, now), undefined, 'a restart ends old sessions');
  assert.equal(keys.verify(cookieValue.replace(/^v1\.\d+/, `v1.${Math.floor(now / 1000) + 10 * SESSION_TTL_S}`), now), undefined, 'the expiry is signed');
  assert.equal(keys.csrfMatches(session, session.csrf), true);
  assert.equal(keys.csrfMatches(session, undefined), false);
});
