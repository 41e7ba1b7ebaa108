// Rate limits and connection limits through the real binary (2 shards) in front of a raw backend, with real
// clients bound to different loopback source addresses (127.0.0.0/8 is all loopback on Linux), so each
// address is its own client: undici for HTTP/1.1, node:http2, quiclb's HTTP/3 bench client. The last test
// runs the primary in this process to kill and restart both shards.
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import http2 from 'node:http2';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Agent, request } from 'undici';
import pino from 'pino';
import { startRawBackend, type RawBackend } from '../support/raw-backend.ts';
import { startQuiclb, type QuiclbProcess } from '../support/quiclb-process.ts';
import { getJson } from '../support/http-client.ts';
import { freePort } from '../../bench/lib/procs.ts';
import { H3Connection } from '../../bench/lib/h3-client.ts';
import { runBounded } from '../support/quic-harness.ts';
import { startPrimary } from '../../src/primary/primary.ts';
import { validateConfig } from '../../src/config/load.ts';
import { G_SHARD_RESTARTS } from '../../src/shared/state.ts';

const RATE = 20;
const BURST = 20;
const LOGIN_RATE = 0.2; // one login token per 5 s
const LOGIN_BURST = 5;

let backend: RawBackend;
before(async () => {
  backend = await startRawBackend();
});
after(async () => {
  await backend?.close();
});

const backendServers = () => [{ id: 'raw-1', host: '127.0.0.1', port: backend.port }];

interface Answer {
  status: number;
  retryAfter: string | undefined;
  text: string;
}

const agents: Agent[] = [];
/** An undici client whose connections come from `localAddress`. */
function clientAt(localAddress: string): Agent {
  const a = new Agent({ localAddress, keepAliveTimeout: 2000 });
  agents.push(a);
  return a;
}

async function send(url: string, dispatcher: Agent, init: { method?: string; headers?: Record<string, string>; body?: string } = {}): Promise<Answer> {
  const res = await request(url, { dispatcher, method: (init.method ?? 'GET') as 'GET', headers: init.headers, body: init.body });
  const text = await res.body.text();
  const ra = res.headers['retry-after'];
  return { status: res.statusCode, retryAfter: Array.isArray(ra) ? ra[0] : ra, text };
}

/** `n` requests at once; `init(i)` per request. */
async function burst(url: string, dispatcher: Agent, n: number, init: (i: number) => Parameters<typeof send>[2] = () => ({})): Promise<{ answers: Answer[]; seconds: number }> {
  const t0 = performance.now();
  const answers = await Promise.all(Array.from({ length: n }, (_, i) => send(url, dispatcher, init(i))));
  return { answers, seconds: (performance.now() - t0) / 1000 };
}

const count = (answers: Answer[], status: number) => answers.filter((a) => a.status === status).length;

/**
 * A token bucket of BURST at RATE/s lets through at least the burst and at most what it refilled while the
 * requests were arriving; everything else is 429 with a Retry-After of whole seconds.
 */
function assertLimitedBurst(r: { answers: Answer[]; seconds: number }, label: string): number {
  const ok = count(r.answers, 200);
  const limited = count(r.answers, 429);
  assert.equal(ok + limited, r.answers.length, `${label}: only 200 and 429 (${r.answers.map((a) => a.status).join(',')})`);
  assert.ok(ok >= BURST, `${label}: at least the burst accepted (${ok})`);
  const most = BURST + Math.ceil(RATE * r.seconds) + 1;
  assert.ok(ok <= most, `${label}: ${ok} accepted in ${r.seconds.toFixed(2)} s, at most ${most}`);
  assert.ok(limited > 0, `${label}: some refused (${ok} accepted in ${r.seconds.toFixed(2)} s)`);
  for (const a of r.answers.filter((x) => x.status === 429)) {
    // RFC 6585 §4 / RFC 9110 §10.2.3: delay-seconds. At 20/s the next token is 50 ms away: 1 s.
    assert.equal(a.retryAfter, '1', `${label}: Retry-After`);
    assert.match(a.text, /Too many requests/);
  }
  return limited;
}

function rateLimitLogs(lb: QuiclbProcess, client: string): Array<Record<string, unknown>> {
  return lb.logs().filter((l) => /client rate-limited/.test(String(l.msg)) && l.client === client);
}

function metric(text: string, line: RegExp): number {
  const m = text.match(line);
  assert.ok(m, `metric ${line} in\n${text.split('\n').filter((l) => l.includes('rate_limit')).join('\n')}`);
  return Number(m[1]);
}

describe('request rate limits (requestsPerSecond 20, burst 20, 2 shards)', () => {
  let lb: QuiclbProcess;
  let base: string;
  const admin = clientAt('127.0.0.1');
  // Every 429 the tests saw, by reason (told apart by the answer's text).
  const seen = { general: 0, login: 0 };
  const tally = (answers: Answer[]) => {
    for (const a of answers) {
      if (a.status !== 429) continue;
      if (/login attempts/.test(a.text)) seen.login++;
      else seen.general++;
    }
  };

  before(async () => {
    lb = await startQuiclb({
      config: {
        loadBalancer: { sessionPersistence: false, backendServers: backendServers() },
        healthCheck: { enabled: false },
        logging: { accessLog: false },
        server: { trustedProxies: ['127.0.0.7/32'] },
        rateLimit: { enabled: true, requestsPerSecond: RATE, burst: BURST, login: { requestsPerSecond: LOGIN_RATE, burst: LOGIN_BURST } },
      },
      workers: 2,
    });
    base = `http://127.0.0.1:${lb.httpPort}`;
  });
  after(async () => {
    await lb?.stop();
  });

  test('80 parallel requests from one client: about a burst accepted, the rest 429 with Retry-After; another client unaffected; recovery after Retry-After; logged once', async () => {
    const a = clientAt('127.0.0.2');
    const forwarded = backend.requests.length;
    const r = await burst(`${base}/course/view.php?id=2`, a, 80);
    tally(r.answers);
    assertLimitedBurst(r, 'client 127.0.0.2');
    assert.equal(backend.requests.length - forwarded, count(r.answers, 200), 'refused requests never reach the backend');
    const b = clientAt('127.0.0.3');
    const other = await burst(`${base}/index.php`, b, 10);
    assert.deepEqual(other.answers.map((x) => x.status), Array(10).fill(200), 'a second client has its own bucket');
    // Once Retry-After has passed, the first client gets through again.
    await sleep(Number(r.answers.find((x) => x.status === 429)!.retryAfter) * 1000);
    for (let i = 0; i < 5; i++) assert.equal((await send(`${base}/index.php`, a)).status, 200, `after Retry-After, request ${i}`);
    // Logged once for the whole flood (logInterval 1m), naming the client and the reason.
    const line = await lb.waitForLog((l) => /client rate-limited/.test(String(l.msg)) && l.client === '127.0.0.2', 5000);
    assert.equal(line.reason, 'general');
    assert.equal(line.level, 40, 'warn');
    await sleep(200);
    assert.equal(rateLimitLogs(lb, '127.0.0.2').length, 1, 'one log line however many refusals');
  });

  test('the login bucket trips before the general one: POST /login/index.php', async () => {
    const c = clientAt('127.0.0.4');
    const login = () => send(`${base}/login/index.php`, c, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'username=student&password=wrong' });
    const answers: Answer[] = [];
    for (let i = 0; i < LOGIN_BURST + 3; i++) answers.push(await login());
    tally(answers);
    assert.deepEqual(answers.map((x) => x.status), [...Array(LOGIN_BURST).fill(200), 429, 429, 429]);
    for (const x of answers.slice(LOGIN_BURST)) {
      assert.match(x.text, /Too many login attempts/);
      assert.equal(x.retryAfter, String(1 / LOGIN_RATE), 'the login bucket refills one token per 5 s');
    }
    // The general bucket still has tokens: showing the form and the rest of the site work.
    assert.equal((await send(`${base}/login/index.php`, c)).status, 200, 'GET of the login form is not a login attempt');
    assert.equal((await send(`${base}/my/`, c)).status, 200);
    const line = await lb.waitForLog((l) => /client rate-limited/.test(String(l.msg)) && l.client === '127.0.0.4', 5000);
    assert.equal(line.reason, 'login');
  });

  test('admin endpoints are never limited and take no tokens', async () => {
    const c = clientAt('127.0.0.5');
    const paths = ['/stats', '/metrics', '/health', '/api/test'];
    const answers = await Promise.all(Array.from({ length: 60 }, (_, i) => send(`${base}${paths[i % paths.length]}`, c)));
    assert.deepEqual([...new Set(answers.map((x) => x.status))], [200], 'every admin request answered');
    // Had the 60 admin requests taken tokens, this burst would be refused.
    const after = await burst(`${base}/index.php`, c, BURST);
    assert.deepEqual(after.answers.map((x) => x.status), Array(BURST).fill(200));
  });

  test('X-Forwarded-For from an untrusted client is ignored; from a trusted proxy it names the client', async () => {
    // Untrusted: a different forged address on every request changes nothing, the socket peer is limited.
    const untrusted = clientAt('127.0.0.8');
    const forged = await burst(`${base}/index.php`, untrusted, 60, (i) => ({ headers: { 'x-forwarded-for': `198.51.100.${i + 1}` } }));
    tally(forged.answers);
    assertLimitedBurst(forged, 'untrusted 127.0.0.8 with forged X-Forwarded-For');
    await lb.waitForLog((l) => /client rate-limited/.test(String(l.msg)) && l.client === '127.0.0.8', 5000);
    assert.equal(rateLimitLogs(lb, '198.51.100.1').length, 0, 'no forged address was limited');

    // Trusted (server.trustedProxies): each forwarded address is its own client, so 60 clients x 1 request pass...
    const proxy = clientAt('127.0.0.7');
    const many = await burst(`${base}/index.php`, proxy, 60, (i) => ({ headers: { 'x-forwarded-for': `203.0.113.${i + 1}` } }));
    assert.deepEqual(many.answers.map((x) => x.status), Array(60).fill(200), 'one request each from 60 clients behind the proxy');
    // ...and one client behind it is limited by its own address, not the proxy's.
    const one = await burst(`${base}/index.php`, proxy, 60, () => ({ headers: { 'x-forwarded-for': '192.0.2.50, 127.0.0.7' } }));
    tally(one.answers);
    assertLimitedBurst(one, 'client 192.0.2.50 behind trusted proxy 127.0.0.7');
    const line = await lb.waitForLog((l) => /client rate-limited/.test(String(l.msg)) && l.client === '192.0.2.50', 5000);
    assert.equal(line.peer, '127.0.0.7');
    assert.equal(rateLimitLogs(lb, '127.0.0.7').length, 0, 'the proxy itself was never limited');
  });

  test('HTTP/3 requests are limited by the same phase', async () => {
    const c = await H3Connection.connect({ host: '127.0.0.1', port: lb.httpsPort });
    try {
      const t0 = performance.now();
      const rs = await Promise.all(Array.from({ length: 60 }, () => c.request({ path: '/index.php', collectBody: true, timeoutMs: 10_000 })));
      const answers = rs.map((r) => ({
        status: r.status,
        retryAfter: r.headers.find(([n]) => n === 'retry-after')?.[1],
        text: r.body?.toString() ?? '',
      }));
      tally(answers);
      assertLimitedBurst({ answers, seconds: (performance.now() - t0) / 1000 }, 'HTTP/3 client 127.0.0.1');
    } finally {
      c.close();
    }
  });

  test('/stats and /metrics count each reason', async () => {
    const stats = (await getJson(`${base}/stats`, { dispatcher: admin })).body;
    assert.equal(stats.rateLimit.enabled, true);
    assert.deepEqual(stats.rateLimit.limited, { general: seen.general, login: seen.login, connections: 0 });
    assert.ok(seen.general > 0 && seen.login > 0);
    assert.equal(stats.rateLimit.clients.capacity, 65536);
    assert.equal(stats.rateLimit.clients.overflows, 0);
    const metrics = (await getJson(`${base}/metrics`, { dispatcher: admin })).body as string;
    assert.match(metrics, /^# TYPE quiclb_rate_limited_total counter$/m);
    assert.equal(metric(metrics, /^quiclb_rate_limited_total\{reason="general"\} (\d+)$/m), seen.general);
    assert.equal(metric(metrics, /^quiclb_rate_limited_total\{reason="login"\} (\d+)$/m), seen.login);
    assert.equal(metric(metrics, /^quiclb_rate_limited_total\{reason="connections"\} (\d+)$/m), 0);
    assert.equal(metric(metrics, /^quiclb_rate_limit_enabled (\d+)$/m), 1);
  });
});

/**
 * A plain-HTTP keep-alive connection from `localAddress` that got the head of one answer to GET `path`
 * (its status returned with it), or 'refused' when it was closed unanswered.
 */
function h1Connection(port: number, localAddress: string, path = '/index.php'): Promise<{ socket: net.Socket; status: number } | 'refused'> {
  return new Promise((resolve) => {
    const socket = net.connect({ port, host: '127.0.0.1', localAddress });
    let got = '';
    socket.on('error', () => undefined);
    socket.on('connect', () => socket.write(`GET ${path} HTTP/1.1\r\nHost: moodle.test\r\n\r\n`));
    socket.on('data', (d) => {
      got += d.toString('latin1');
      if (got.includes('\r\n\r\n')) resolve({ socket, status: Number(got.slice(9, 12)) });
    });
    socket.on('close', () => resolve('refused'));
  });
}

/** An HTTP/2 session from `localAddress` and the status of one GET on it, or 'refused' when it closed first. */
function h2Session(port: number, localAddress: string): Promise<{ session: http2.ClientHttp2Session; status: number } | 'refused'> {
  return new Promise((resolve) => {
    const session = http2.connect(`https://127.0.0.1:${port}`, { rejectUnauthorized: false, localAddress } as http2.SecureClientSessionOptions);
    session.on('error', () => undefined);
    session.on('close', () => resolve('refused'));
    const req = session.request({ ':path': '/index.php' });
    req.on('error', () => undefined);
    req.on('response', (h) => {
      req.resume();
      req.on('end', () => resolve({ session, status: Number(h[':status']) }));
    });
    req.end();
  });
}

/**
 * An HTTP/3 connection from 127.0.0.1 that answered GET /index.php with 200, or why it failed. A refused
 * connection may look established for a moment: with a short certificate chain the server's whole first
 * flight fits in the datagram before the CONNECTION_CLOSE, so the client completes its side of the handshake
 * and then reads the close; either way it never gets an answer.
 */
async function h3Connection(port: number): Promise<H3Connection | string> {
  let c: H3Connection | undefined;
  try {
    c = await H3Connection.connect({ host: '127.0.0.1', port, connectTimeoutMs: 5000 });
    const r = await c.request({ path: '/index.php', timeoutMs: 5000 });
    assert.equal(r.status, 200);
    return c;
  } catch (err) {
    c?.close();
    return (err as Error).message;
  }
}

/** Tries `open` until it is not refused (a released place may take a moment: the close has to reach the shard). */
async function openWhenFreed<T>(open: () => Promise<T | 'refused'>, refusals: { n: number }): Promise<T> {
  const deadline = Date.now() + 5000;
  for (;;) {
    const c = await open();
    if (c !== 'refused') return c;
    refusals.n++;
    assert.ok(Date.now() < deadline, 'a closed connection gives its place back');
    await sleep(100);
  }
}

describe('maxConnectionsPerClient 3 (TCP and QUIC together, 2 shards)', () => {
  let lb: QuiclbProcess;
  let adminPort: number;
  const refusals = { n: 0 };

  before(async () => {
    adminPort = await freePort();
    lb = await startQuiclb({
      config: {
        loadBalancer: { sessionPersistence: false, backendServers: backendServers() },
        healthCheck: { enabled: false },
        logging: { accessLog: false },
        admin: { port: adminPort },
        server: { trustedProxies: ['127.0.0.9/32'] },
        rateLimit: { enabled: true, requestsPerSecond: 1000, burst: 1000, maxConnectionsPerClient: 3 },
      },
      workers: 2,
    });
  });
  after(async () => {
    await lb?.stop();
  });

  const stats = async () => (await getJson(`http://127.0.0.1:${adminPort}/stats`)).body;

  test('HTTP/1.1: the 4th connection of a client is closed unanswered, other clients are unaffected, a closed one frees its place', async () => {
    const open = () => h1Connection(lb.httpPort, '127.0.0.5');
    const held: net.Socket[] = [];
    for (let i = 0; i < 3; i++) {
      const c = await open();
      assert.notEqual(c, 'refused', `connection ${i + 1}`);
      if (c === 'refused') return;
      assert.equal(c.status, 200);
      held.push(c.socket);
    }
    // Counted across shards: the primary spreads the three over both.
    const s = await stats();
    assert.ok(s.shards.every((sh: { connections: number }) => sh.connections >= 1), JSON.stringify(s.shards));
    assert.equal(await open(), 'refused');
    refusals.n++;
    const other = await h1Connection(lb.httpPort, '127.0.0.6');
    assert.notEqual(other, 'refused', 'another client has its own count');
    if (other !== 'refused') other.socket.destroy();
    held.pop()!.destroy();
    const freed = await openWhenFreed(open, refusals);
    assert.equal(freed.status, 200);
    held.push(freed.socket);
    for (const c of held) c.destroy();
    const line = await lb.waitForLog((l) => /maxConnectionsPerClient/.test(String(l.msg)) && l.client === '127.0.0.5', 5000);
    assert.equal(line.limit, 3);
  });

  test('HTTP/2 over TLS: the 4th session of a client is refused', async () => {
    const open = () => h2Session(lb.httpsPort, '127.0.0.6');
    const held: http2.ClientHttp2Session[] = [];
    // 127.0.0.6's HTTP/1.1 connection of the previous test may still be closing.
    for (let i = 0; i < 3; i++) {
      const c = await openWhenFreed(open, refusals);
      assert.equal(c.status, 200, `session ${i + 1}`);
      held.push(c.session);
    }
    assert.equal(await open(), 'refused');
    refusals.n++;
    held.pop()!.destroy();
    const freed = await openWhenFreed(open, refusals);
    assert.equal(freed.status, 200);
    held.push(freed.session);
    for (const c of held) c.destroy();
  });

  test('HTTP/3: the 4th QUIC connection is refused with CONNECTION_REFUSED, and TCP counts with QUIC', async () => {
    const held: H3Connection[] = [];
    for (let i = 0; i < 3; i++) {
      const c = await h3Connection(lb.httpsPort);
      assert.ok(c instanceof H3Connection, `connection ${i + 1}: ${String(c)}`);
      held.push(c);
    }
    // RFC 9000 §20.1: CONNECTION_REFUSED is transport error 0x02.
    assert.match(String(await h3Connection(lb.httpsPort)), /transport error 0x2 too many connections from your address/);
    refusals.n++;
    // ngtcp2 (gtlsclient, not quiet: it prints every frame) reads the same close.
    const ngtcp2 = await runBounded('gtlsclient', ['--timeout=3s', '--exit-on-all-streams-close', '127.0.0.1', String(lb.httpsPort), `https://127.0.0.1:${lb.httpsPort}/index.php`], 15_000);
    assert.match(ngtcp2.stderr, /frm rx \d+ (Initial|Handshake) CONNECTION_CLOSE\(0x1c\) error_code=CONNECTION_REFUSED\(0x2\)/);
    assert.doesNotMatch(ngtcp2.stderr, /HANDSHAKE_DONE/, 'gtlsclient never completed a handshake');
    refusals.n++;
    // The same client's TCP connections count against the same limit.
    assert.equal(await h1Connection(lb.httpPort, '127.0.0.1'), 'refused');
    refusals.n++;
    held.pop()!.close();
    held.push(await openWhenFreed(async () => {
      const c = await h3Connection(lb.httpsPort);
      if (c instanceof H3Connection) return c;
      assert.match(c, /transport error 0x2 /);
      return 'refused' as const;
    }, refusals));
    for (const c of held) c.close();
  });

  test('connections from a trusted proxy are not counted; the admin port is never limited', async () => {
    const held: net.Socket[] = [];
    for (let i = 0; i < 6; i++) {
      const proxied = await h1Connection(lb.httpPort, '127.0.0.9');
      assert.notEqual(proxied, 'refused', `proxy connection ${i + 1}`);
      if (proxied !== 'refused') held.push(proxied.socket);
      const adminConn = await h1Connection(adminPort, '127.0.0.10', '/api/test');
      assert.notEqual(adminConn, 'refused', `admin connection ${i + 1}`);
      if (adminConn !== 'refused') {
        assert.equal(adminConn.status, 200);
        held.push(adminConn.socket);
      }
    }
    for (const c of held) c.destroy();
  });

  test('/stats and /metrics count refused connections', async () => {
    const s = await stats();
    assert.deepEqual(s.rateLimit.limited, { general: 0, login: 0, connections: refusals.n });
    const metrics = (await getJson(`http://127.0.0.1:${adminPort}/metrics`)).body as string;
    assert.equal(metric(metrics, /^quiclb_rate_limited_total\{reason="connections"\} (\d+)$/m), refusals.n);
  });
});

test('restarted shards attach to the same limiter: a client emptied its bucket before both shards were restarted, and still has to wait', { timeout: 60_000 }, async () => {
  const config = validateConfig({
    server: { httpPort: await freePort(), httpsPort: await freePort(), bindAddress: '127.0.0.1', shutdownTimeout: '2s' },
    tls: { stateDir: path.join(await mkdtemp(path.join(tmpdir(), 'quiclb-rl-restart-')), 'state') },
    quic: { enabled: false },
    healthCheck: { enabled: false },
    logging: { level: 'silent', accessLog: false },
    loadBalancer: { sessionPersistence: false, backendServers: backendServers() },
    // One token per 100 s: nothing refills during the test.
    rateLimit: { enabled: true, requestsPerSecond: 0.01, burst: 10 },
  });
  const primary = await startPrimary({ config, workers: 2, logger: pino({ level: 'silent' }) });
  const base = `http://127.0.0.1:${config.server.httpPort}`;
  try {
    const c = new Agent({ localAddress: '127.0.0.2', keepAliveTimeout: 10 });
    agents.push(c);
    const statuses: number[] = [];
    for (let i = 0; i < 11; i++) statuses.push((await send(`${base}/index.php`, c)).status);
    assert.deepEqual(statuses, [...Array(10).fill(200), 429]);
    for (const shard of [0, 1]) {
      const restarts = primary.state.globalCounter(G_SHARD_RESTARTS);
      await primary.supervisor.kill(shard);
      const deadline = Date.now() + 15_000;
      while (!(primary.supervisor.alive(shard) && primary.state.globalCounter(G_SHARD_RESTARTS) === restarts + 1n)) {
        assert.ok(Date.now() < deadline, `shard ${shard} came back`);
        await sleep(50);
      }
    }
    // Fresh connections, so the answers come from the restarted shards.
    for (let i = 0; i < 4; i++) {
      const fresh = new Agent({ localAddress: '127.0.0.2', keepAliveTimeout: 10, pipelining: 0 });
      agents.push(fresh);
      const r = await send(`${base}/index.php`, fresh);
      assert.equal(r.status, 429, `request ${i} after the restarts`);
      assert.ok(Number(r.retryAfter) > 1, `Retry-After ${r.retryAfter}`);
    }
    assert.equal((await send(`${base}/index.php`, clientAt('127.0.0.3'))).status, 200, 'another client is unaffected');
    const stats = (await getJson(`${base}/stats`)).body;
    assert.equal(stats.shardRestarts, 2);
    assert.equal(stats.rateLimit.limited.general, 5, 'counters survive the restarts too');
  } finally {
    await primary.stop();
  }
});

after(async () => {
  for (const a of agents) await a.close();
});
