// quiclb as Moodle's web server with php-fpm straight behind it (FastCGI, no nginx): the real quiclb binary, two
// real php-fpm masters (one on a unix socket, one on TCP), clients nobody here wrote (curl, gtlsclient) and undici.
// Load balancing, stickiness, health and failover work on FastCGI backends as on HTTP ones.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { request } from 'undici';
import { startFpmBackends, type FpmBackendSet } from '../support/fpm-backends.ts';
import { buildMoodleTree, type MoodleTree } from '../support/moodle-tree.ts';
import { startQuiclb, type QuiclbProcess } from '../support/quiclb-process.ts';
import { CookieJar, execFileP, getJson } from '../support/http-client.ts';
import { gtlsclient } from '../support/quic-harness.ts';
import { H3Connection } from '../../bench/lib/h3-client.ts';

let tree: MoodleTree;
let fpm: FpmBackendSet;
let lb: QuiclbProcess;
let scratch: string;

before(async () => {
  tree = await buildMoodleTree();
  fpm = await startFpmBackends([
    { id: 'fpm-unix', listen: 'unix', children: 8 },
    { id: 'fpm-tcp', listen: 'tcp', children: 8 },
  ]);
  lb = await startQuiclb({
    config: {
      loadBalancer: { backendServers: fpm.backends.map((b) => b.config()) },
      moodle: { wwwRoot: tree.wwwRoot, dataRoot: tree.dataRoot },
      // A probe waits for a free php-fpm child like any request: on a loaded 2-core host 250 ms is too short.
      healthCheck: { interval: '500ms', timeout: '500ms' },
    },
    workers: 2,
  });
  scratch = await mkdtemp(path.join(tmpdir(), 'quiclb-fcgi-lb-'));
});

after(async () => {
  if (process.env.DUMP) (await import('node:fs')).writeFileSync(process.env.DUMP, lb.lines.filter((l) => !l.includes('"msg":"request"')).join('\n'));
  await lb?.stop();
  await fpm?.stop();
  await tree?.remove();
  if (scratch) await rm(scratch, { recursive: true, force: true });
});

const http = (p: string): string => `http://127.0.0.1:${lb.httpPort}${p}`;
const stats = async (): Promise<{ backends: Array<{ id: string; healthy: boolean; requests: number; protocol: string }> }> => (await getJson(http('/stats'))).body;

async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    assert.ok(Date.now() < deadline, `timed out waiting until ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const healthyOf = async (id: string): Promise<boolean> => (await stats()).backends.find((b) => b.id === id)!.healthy;

test('the seed shorthand (moodle.phpFpmSocket + moodle.wwwRoot only) starts quiclb with one FastCGI backend that serves PHP', async () => {
  const one = await startQuiclb({ config: { moodle: { phpFpmSocket: fpm.backends[0].socketPath, wwwRoot: tree.wwwRoot } }, workers: 1 });
  try {
    const ready = await one.waitForLog((e) => e.msg === 'quiclb ready');
    assert.deepEqual(ready.backends, [`php-fpm=fastcgi://${fpm.backends[0].socketPath}`]);
    const res = await getJson(`http://127.0.0.1:${one.httpPort}/index.php`);
    assert.equal(res.status, 200);
    assert.equal(res.body.backend, 'fpm-unix');
    assert.equal(res.body.remote_addr, '127.0.0.1');
    const s = (await getJson(`http://127.0.0.1:${one.httpPort}/stats`)).body;
    assert.deepEqual(
      s.backends.map((b: Record<string, unknown>) => [b.id, b.protocol, b.socket, b.healthy]),
      [['php-fpm', 'fastcgi', fpm.backends[0].socketPath, true]],
    );
  } finally {
    await one.stop();
  }
});

test('round robin over a unix-socket pool and a TCP pool: both receive traffic, /stats and /metrics count them', async () => {
  const before = await stats();
  const seen = new Map<string, number>();
  for (let i = 0; i < 20; i++) {
    const res = await getJson(http(`/index.php?i=${i}`));
    assert.equal(res.status, 200);
    seen.set(res.body.backend, (seen.get(res.body.backend) ?? 0) + 1);
  }
  assert.deepEqual([...seen.keys()].sort(), ['fpm-tcp', 'fpm-unix']);
  assert.ok(seen.get('fpm-unix')! >= 5 && seen.get('fpm-tcp')! >= 5, JSON.stringify([...seen]));
  const after = await stats();
  for (const b of after.backends) {
    assert.equal(b.protocol, 'fastcgi');
    assert.ok(b.requests - before.backends.find((x) => x.id === b.id)!.requests >= 5, `${b.id} requests counted`);
  }
  const metrics = await (await request(http('/metrics'))).body.text();
  assert.match(metrics, /quiclb_backend_requests_total\{backend="fpm-tcp"\} \d+/);
});

/** What params.php reports, for one protocol. */
function checkParams(s: Record<string, string>, protocol: 'HTTP/1.1' | 'HTTP/2.0' | 'HTTP/3.0', port: number): void {
  const tls = protocol !== 'HTTP/1.1';
  assert.equal(s.__script__, `${tree.wwwRoot}/params.php`);
  assert.equal(s.SCRIPT_FILENAME, `${tree.wwwRoot}/params.php`);
  assert.equal(s.SCRIPT_NAME, '/params.php');
  assert.equal(s.PATH_INFO, '/12/mod_resource/content/0/file name.pdf');
  assert.equal(s.PHP_SELF, '/params.php/12/mod_resource/content/0/file name.pdf');
  assert.equal(s.REQUEST_URI, '/params.php/12/mod_resource/content/0/file%20name.pdf?forcedownload=1');
  assert.equal(s.QUERY_STRING, 'forcedownload=1');
  assert.equal(s.DOCUMENT_ROOT, tree.wwwRoot);
  assert.equal(s.SERVER_PROTOCOL, protocol);
  assert.equal(s.REQUEST_SCHEME, tls ? 'https' : 'http');
  assert.equal(s.HTTPS, tls ? 'on' : undefined);
  assert.equal(s.SERVER_NAME, '127.0.0.1');
  assert.equal(s.SERVER_PORT, String(port));
  assert.equal(s.HTTP_HOST, `127.0.0.1:${port}`);
  assert.equal(s.REMOTE_ADDR, '127.0.0.1', 'the real client, not a proxy');
  assert.match(s.REMOTE_PORT, /^\d+$/);
  assert.notEqual(s.REMOTE_PORT, '0');
  assert.equal(s.GATEWAY_INTERFACE, 'CGI/1.1');
  assert.equal(s.HTTP_X_FORWARDED_PROTO, tls ? 'https' : 'http');
  assert.equal(s.HTTP_X_FORWARDED_FOR, '127.0.0.1');
  assert.equal(s.HTTP_PROXY, undefined, 'httpoxy: never HTTP_PROXY');
  assert.equal(s.HTTP_CLIENT_IP, undefined, 'a client cannot claim an address');
}

const PARAMS_PATH = '/params.php/12/mod_resource/content/0/file%20name.pdf?forcedownload=1';

test('CGI parameters over HTTP/1.1 (undici): slash arguments as PATH_INFO, the client as REMOTE_ADDR, no HTTPS, a POST body length', async () => {
  const res = await request(http(PARAMS_PATH), { headers: { proxy: 'http://evil.example:3128', 'client-ip': '6.6.6.6' } });
  assert.equal(res.statusCode, 200);
  checkParams((await res.body.json()) as Record<string, string>, 'HTTP/1.1', lb.httpPort);
  const post = await request(http('/params.php'), { method: 'POST', body: 'a=1&b=2', headers: { 'content-type': 'application/x-www-form-urlencoded' } });
  const s = (await post.body.json()) as Record<string, string>;
  assert.equal(s.REQUEST_METHOD, 'POST');
  assert.equal(s.CONTENT_LENGTH, '7');
  assert.equal(s.CONTENT_TYPE, 'application/x-www-form-urlencoded');
  assert.equal(s.PATH_INFO, undefined);
});

test('CGI parameters over HTTP/2 (curl): HTTPS=on, SERVER_PROTOCOL HTTP/2.0', async () => {
  const { stdout } = await execFileP('curl', ['-sk', '--http2', '-H', 'Proxy: http://evil.example:3128', `https://127.0.0.1:${lb.httpsPort}${PARAMS_PATH}`]);
  checkParams(JSON.parse(stdout) as Record<string, string>, 'HTTP/2.0', lb.httpsPort);
});

test('CGI parameters over HTTP/3 (gtlsclient): HTTPS=on, SERVER_PROTOCOL HTTP/3.0', async () => {
  const dir = await mkdtemp(path.join(scratch, 'h3-params-'));
  const r = await gtlsclient(lb.httpsPort, [PARAMS_PATH], [`--download=${dir}`]);
  assert.equal(r.code, 0, r.stderr.slice(-2000));
  const body = await readFile(path.join(dir, 'file%20name.pdf?forcedownload=1'), 'utf8').catch(async () => readFile(path.join(dir, 'file name.pdf?forcedownload=1'), 'utf8'));
  checkParams(JSON.parse(body) as Record<string, string>, 'HTTP/3.0', lb.httpsPort);
});

test('MoodleSession stickiness over HTTP/1.1 (undici): 8 clients x 20 requests keep their PHP session on one pool', async () => {
  const used = new Set<string>();
  await Promise.all(
    Array.from({ length: 8 }, async () => {
      const jar = new CookieJar();
      let backend: string | undefined;
      for (let i = 1; i <= 20; i++) {
        const res = await getJson(http('/session.php'), { jar });
        assert.equal(res.body.count, i, `session lost on request ${i} (backend ${res.body.backend})`);
        backend ??= res.body.backend;
        assert.equal(res.body.backend, backend);
      }
      used.add(backend!);
    }),
  );
  assert.equal(used.size, 2, 'new clients went to both pools');
});

test('the Moodle session cookie alone keeps a client on its pool (affinity cookie dropped)', async () => {
  const jar = new CookieJar();
  const first = await getJson(http('/session.php'), { jar });
  const sid = jar.get('MoodleSession');
  assert.ok(sid);
  for (let i = 2; i <= 12; i++) {
    const res: { body: { backend: string; count: number } } = await getJson(http('/session.php'), { headers: { cookie: `MoodleSession=${sid}` } });
    assert.equal(res.body.backend, first.body.backend);
    assert.equal(res.body.count, i);
  }
});

test('MoodleSession stickiness over HTTP/2 (curl with a cookie file)', async () => {
  for (let client = 0; client < 3; client++) {
    const jar = path.join(scratch, `h2-jar-${client}.txt`);
    let backend: string | undefined;
    for (let i = 1; i <= 10; i++) {
      const { stdout } = await execFileP('curl', ['-sk', '--http2', '-c', jar, '-b', jar, `https://127.0.0.1:${lb.httpsPort}/session.php`]);
      const body = JSON.parse(stdout) as { count: number; backend: string };
      assert.equal(body.count, i);
      backend ??= body.backend;
      assert.equal(body.backend, backend);
    }
  }
});

/** An HTTP/3 client with a cookie jar (gtlsclient sends no cookies): the bench client on quiche. */
async function h3Session(conn: H3Connection, jar: CookieJar): Promise<{ count: number; backend: string }> {
  const cookie = jar.header();
  const res = await conn.request({ path: '/session.php', headers: cookie === undefined ? [] : [['cookie', cookie]], collectBody: true, timeoutMs: 10_000 });
  assert.equal(res.status, 200);
  jar.absorb(res.headers.filter(([n]) => n === 'set-cookie').map(([, v]) => v));
  return JSON.parse(res.body!.toString()) as { count: number; backend: string };
}

test('MoodleSession stickiness over HTTP/3, new connections each time', { timeout: 60_000 }, async () => {
  for (let client = 0; client < 3; client++) {
    const jar = new CookieJar();
    let backend: string | undefined;
    for (let i = 1; i <= 8; i++) {
      const conn = await H3Connection.connect({ host: '127.0.0.1', port: lb.httpsPort });
      try {
        const body = await h3Session(conn, jar);
        assert.equal(body.count, i);
        backend ??= body.backend;
        assert.equal(body.backend, backend);
      } finally {
        conn.close();
      }
    }
  }
});

test('failover: a pool whose health check turns unhealthy loses its clients to the other, which then keeps them', { timeout: 60_000 }, async () => {
  // One client on HTTP/1.1 and one on HTTP/3, both pinned to the same pool.
  const h1 = new CookieJar();
  const first = await getJson(http('/session.php'), { jar: h1 });
  const pinned = fpm.backends.find((b) => b.id === first.body.backend)!;
  const other = fpm.backends.find((b) => b !== pinned)!;
  const h3jar = new CookieJar();
  h3jar.absorb(`QUICLB_AFFINITY=${h1.get('QUICLB_AFFINITY')}`);
  const conn = await H3Connection.connect({ host: '127.0.0.1', port: lb.httpsPort });
  try {
    assert.equal((await h3Session(conn, h3jar)).backend, pinned.id);
    await pinned.setHealthy(false);
    await waitFor(`${pinned.id} is marked down`, async () => !(await healthyOf(pinned.id)));
    const moved = await getJson(http('/session.php'), { jar: h1 });
    assert.equal(moved.body.backend, other.id);
    assert.equal(moved.body.count, 1, 'a new session on the other pool (sessions are per pool here)');
    const movedH3 = await h3Session(conn, h3jar);
    assert.equal(movedH3.backend, other.id);
    // Back up: the moved clients stay where they are now.
    await pinned.setHealthy(true);
    await waitFor(`${pinned.id} is up again`, () => healthyOf(pinned.id));
    for (let i = 2; i <= 5; i++) {
      const res = await getJson(http('/session.php'), { jar: h1 });
      assert.equal(res.body.backend, other.id);
      assert.equal(res.body.count, i);
    }
    assert.equal((await h3Session(conn, h3jar)).backend, other.id);
  } finally {
    conn.close();
    await pinned.setHealthy(true);
  }
});

test('every strategy works over FastCGI backends: weighted 3:1, ip_hash keeps a client, least_connections avoids the busy pool', { timeout: 120_000 }, async () => {
  const servers = (weights: number[]) => fpm.backends.map((b, i) => b.config({ weight: weights[i] }));
  const count = async (port: number, n: number, p = '/index.php'): Promise<Map<string, number>> => {
    const m = new Map<string, number>();
    for (let i = 0; i < n; i++) {
      const id = (await getJson(`http://127.0.0.1:${port}${p}`)).body.backend as string;
      m.set(id, (m.get(id) ?? 0) + 1);
    }
    return m;
  };
  const common = { moodle: { wwwRoot: tree.wwwRoot }, healthCheck: { enabled: false } };
  const weighted = await startQuiclb({ config: { ...common, loadBalancer: { strategy: 'weighted', sessionPersistence: false, backendServers: servers([3, 1]) } }, workers: 1 });
  try {
    assert.deepEqual(Object.fromEntries(await count(weighted.httpPort, 20)), { 'fpm-unix': 15, 'fpm-tcp': 5 });
  } finally {
    await weighted.stop();
  }
  const hashed = await startQuiclb({ config: { ...common, loadBalancer: { strategy: 'ip_hash', sessionPersistence: false, backendServers: servers([1, 1]) } }, workers: 1 });
  try {
    assert.equal((await count(hashed.httpPort, 10)).size, 1, 'one client address, one pool');
  } finally {
    await hashed.stop();
  }
  const least = await startQuiclb({ config: { ...common, loadBalancer: { strategy: 'least_connections', sessionPersistence: false, backendServers: servers([1, 1]) } }, workers: 1 });
  try {
    // One slow request occupies a pool; the quick ones meanwhile all go to the other.
    const slow = getJson(`http://127.0.0.1:${least.httpPort}/slow.php?ms=1500`);
    await new Promise((r) => setTimeout(r, 300));
    const quick = await count(least.httpPort, 6);
    const busy = (await slow).body.backend as string;
    assert.deepEqual([...quick.keys()], [fpm.backends.find((b) => b.id !== busy)!.id]);
  } finally {
    await least.stop();
  }
});

test('retries and maxConnections: an idempotent request to a dead pool is retried on another, a POST is not; a full pool is skipped', { timeout: 60_000 }, async () => {
  const { affinityToken } = await import('../../src/balancer/affinity.ts');
  const pinTo = (id: string): Record<string, string> => ({ cookie: `QUICLB_AFFINITY=${affinityToken({ id })}` });
  const lb2 = await startQuiclb({
    config: {
      loadBalancer: {
        backendServers: [fpm.backends[0].config({ maxConnections: 1 }), fpm.backends[1].config(), { id: 'dead', protocol: 'fastcgi', socket: path.join(scratch, 'no-php-fpm.sock') }],
      },
      moodle: { wwwRoot: tree.wwwRoot },
      healthCheck: { enabled: false, passiveFailureThreshold: 100 },
    },
    workers: 1,
  });
  try {
    const got = await getJson(`http://127.0.0.1:${lb2.httpPort}/index.php`, { headers: pinTo('dead') });
    assert.equal(got.status, 200);
    assert.notEqual(got.body.backend, 'dead');
    const post = await request(`http://127.0.0.1:${lb2.httpPort}/upload.php`, { method: 'POST', body: 'x', headers: pinTo('dead') });
    assert.equal(post.statusCode, 502);
    assert.match(await post.body.text(), /backend dead could not be reached \(ECONNREFUSED\)/);
    const s = (await getJson(`http://127.0.0.1:${lb2.httpPort}/stats`)).body as { backends: Array<{ id: string; failovers: number; errors: number }> };
    const dead = s.backends.find((b) => b.id === 'dead')!;
    assert.equal(dead.failovers, 1);
    assert.equal(dead.errors, 2);
    // fpm-unix allows one request at a time: a second one pinned to it while the first runs goes elsewhere.
    const first = getJson(`http://127.0.0.1:${lb2.httpPort}/slow.php?ms=1500`, { headers: pinTo('fpm-unix') });
    await new Promise((r) => setTimeout(r, 300));
    const second = await getJson(`http://127.0.0.1:${lb2.httpPort}/slow.php?ms=10`, { headers: pinTo('fpm-unix') });
    assert.equal((await first).body.backend, 'fpm-unix');
    assert.equal(second.body.backend, 'fpm-tcp');
  } finally {
    await lb2.stop();
  }
});

test('php-fpm killed mid-response: the client sees the response broken, quiclb stays up, the pool is marked down, then recovers', { timeout: 60_000 }, async () => {
  const victim = fpm.backends.find((b) => b.id === 'fpm-tcp')!;
  // A cookie that pins to the victim.
  let cookie = '';
  for (let i = 0; i < 10 && cookie === ''; i++) {
    const jar = new CookieJar();
    const res = await getJson(http('/index.php'), { jar });
    if (res.body.backend === victim.id) cookie = `QUICLB_AFFINITY=${jar.get('QUICLB_AFFINITY')}`;
  }
  assert.notEqual(cookie, '', 'found the affinity cookie of the victim');

  // The same script on all three protocols at once: it sends its headers and 100 KB, then sleeps.
  const h2 = execFileP('curl', ['-sk', '--http2', '-o', '/dev/null', '-H', `Cookie: ${cookie}`, `https://127.0.0.1:${lb.httpsPort}/die-midway.php`]).then(
    () => 0,
    (err: { code?: number }) => err.code ?? -1,
  );
  const conn = await H3Connection.connect({ host: '127.0.0.1', port: lb.httpsPort });
  const h3 = conn.request({ path: '/die-midway.php', headers: [['cookie', cookie]], timeoutMs: 20_000 }).then(
    (r) => `completed with ${r.status}`,
    (err: Error) => err.message,
  );
  const res = await request(http('/die-midway.php'), { headers: { cookie } });
  assert.equal(res.statusCode, 200);
  const reader = res.body[Symbol.asyncIterator]();
  let got = 0;
  while (got < 50_000) {
    const { value, done } = await reader.next();
    assert.ok(!done, 'the body is still flowing');
    got += (value as Buffer).length;
  }
  const active = async (): Promise<number> => ((await getJson(http('/stats'))).body.backends as Array<{ id: string; activeConnections: number }>).find((b) => b.id === victim.id)!.activeConnections;
  await waitFor('all three requests run on the victim', async () => (await active()) === 3);
  await victim.kill();
  await assert.rejects(
    (async () => {
      for (;;) {
        const { done } = await reader.next();
        if (done) return;
      }
    })(),
    'a response cut by php-fpm dying never ends cleanly (HTTP/1.1: no final chunk)',
  );
  assert.notEqual(await h2, 0, 'curl saw the HTTP/2 stream broken');
  assert.doesNotMatch(await h3, /^completed/, 'the HTTP/3 stream was reset, not finished');
  conn.close();
  // quiclb is up and serves from the other pool; the dead one is marked down.
  assert.equal((await getJson(http('/health'))).status, 200);
  await waitFor(`${victim.id} is marked down`, async () => !(await healthyOf(victim.id)));
  const served = await getJson(http('/index.php'), { headers: { cookie } });
  assert.equal(served.status, 200);
  assert.equal(served.body.backend, 'fpm-unix', 'the pinned client moved to the live pool');
  // Started again: marked up, and pinned clients reach it again.
  await victim.start();
  await waitFor(`${victim.id} is up again`, () => healthyOf(victim.id));
  const back = await getJson(http('/index.php'), { headers: { cookie } });
  assert.equal(back.body.backend, victim.id);
  assert.equal(lb.child.exitCode, null, 'quiclb still running');
  assert.ok(!lb.logs().some((e) => e.msg === 'uncaught exception in a shard (a bug: please report it); the shard keeps running'));
});
