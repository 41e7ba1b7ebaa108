// HTTP/1.1 request parsing attacks, on the plain port and over TLS with ALPN http/1.1 (see README.md here).
// Every request below is raw bytes from a socket; the backends record exactly what reaches them.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import tls from 'node:tls';
import { startLbWithRawBackends, type LbWithRawBackends } from '../support/lb-with-raw-backends.ts';
import { rawExchange } from '../support/raw-backend.ts';
import { getJson } from '../support/http-client.ts';

let env: LbWithRawBackends;

before(async () => {
  env = await startLbWithRawBackends(2);
});

after(async () => {
  await env?.stop();
});

function tlsExchange(port: number, data: string, timeoutMs = 3000): Promise<string> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    const socket = tls.connect({ port, host: '127.0.0.1', rejectUnauthorized: false, ALPNProtocols: ['http/1.1'] }, () => socket.write(data));
    const timer = setTimeout(() => socket.destroy(), timeoutMs);
    socket.on('data', (c) => chunks.push(c));
    socket.on('error', () => undefined);
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(Buffer.concat(chunks).toString('latin1'));
    });
  });
}

const statusOf = (text: string): number => Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0);

test('"GET / HTTP/2.0" on the HTTP/1.1 ports is answered 505 and the shard keeps serving (was: shard crash)', async () => {
  const before = env.backends.reduce((n, b) => n + b.requests.length, 0);
  for (let i = 0; i < 5; i++) {
    const plain = await rawExchange(env.lb.httpPort, 'GET / HTTP/2.0\r\nHost: a\r\n\r\n');
    assert.equal(statusOf(plain.text), 505, plain.text);
    const secure = await tlsExchange(env.lb.httpsPort, 'GET / HTTP/2.0\r\nHost: a\r\n\r\n');
    assert.equal(statusOf(secure), 505, secure);
  }
  // Other versions llhttp accepts as numbers, and a garbage version.
  for (const version of ['HTTP/3.0', 'HTTP/0.9', 'HTTP/1.2']) {
    const r = await rawExchange(env.lb.httpPort, `GET / ${version}\r\nHost: a\r\n\r\n`);
    assert.ok([400, 505].includes(statusOf(r.text)), `${version}: ${r.text}`);
  }
  const ok = await getJson(`http://127.0.0.1:${env.lb.httpPort}/after`);
  assert.equal(ok.status, 200);
  assert.equal(env.backends.reduce((n, b) => n + b.requests.length, 0), before + 1, 'only the valid request reached a backend');
  await env.assertUnharmed();
});

test('request smuggling forms are refused before any backend sees them (CL.TE, TE.CL, TE.TE, CL.CL)', async () => {
  const before = env.backends.reduce((n, b) => n + b.requests.length, 0);
  const attacks = [
    // CL.TE / TE.CL: both framings at once (RFC 9112 §6.3: a server MAY reject; a proxy must not forward both).
    'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nX',
    // Two different Content-Length values (RFC 9110 §8.6).
    'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!',
    // Obfuscated Transfer-Encoding.
    'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n',
    'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n',
    // A bare LF line ending and a NUL in a field value.
    'GET / HTTP/1.1\nHost: a\n\n',
    'GET / HTTP/1.1\r\nHost: a\r\nX: a\u0000b\r\n\r\n',
    // Space in the target, obs-fold.
    'GET /a b HTTP/1.1\r\nHost: a\r\n\r\n',
    'GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n b\r\n\r\n',
  ];
  for (const attack of attacks) {
    const r = await rawExchange(env.lb.httpPort, attack);
    assert.equal(statusOf(r.text), 400, `${JSON.stringify(attack)} -> ${r.text}`);
  }
  assert.equal(env.backends.reduce((n, b) => n + b.requests.length, 0), before, 'no smuggled request reached a backend');
  await env.assertUnharmed();
});

test('absolute-form: its authority replaces Host for routing and for the backend (RFC 9112 §3.2.2)', async () => {
  const r = await rawExchange(env.lb.httpPort, 'GET http://moodle.example.edu/course/view.php?id=2 HTTP/1.1\r\nHost: other.example\r\nConnection: close\r\n\r\n');
  assert.equal(statusOf(r.text), 200, r.text);
  const seen = env.backends.flatMap((b) => b.requests).at(-1)!;
  assert.equal(seen.target, '/course/view.php?id=2');
  assert.deepEqual(seen.headers.filter(([n]) => n === 'host'), [['host', 'moodle.example.edu']]);
  // userinfo or an empty authority is refused.
  for (const bad of ['GET http://user@moodle.example.edu/ HTTP/1.1\r\nHost: a\r\n\r\n', 'GET http:///x HTTP/1.1\r\nHost: a\r\n\r\n']) {
    assert.equal(statusOf((await rawExchange(env.lb.httpPort, bad)).text), 400, bad);
  }
});

test('Host rules: none on HTTP/1.1, two, or an invalid one answer 400; HTTP/1.0 without Host is served', async () => {
  const before = env.backends.reduce((n, b) => n + b.requests.length, 0);
  for (const bad of [
    'GET / HTTP/1.1\r\n\r\n',
    'GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n',
    'GET / HTTP/1.1\r\nHost: a b\r\n\r\n',
    'GET / HTTP/1.1\r\nHost: a/b\r\n\r\n',
  ]) {
    assert.equal(statusOf((await rawExchange(env.lb.httpPort, bad)).text), 400, bad);
  }
  assert.equal(env.backends.reduce((n, b) => n + b.requests.length, 0), before);
  const r10 = await rawExchange(env.lb.httpPort, 'GET /old HTTP/1.0\r\n\r\n');
  assert.equal(statusOf(r10.text), 200, r10.text);
  assert.match(r10.text, /connection: close/i);
  await env.assertUnharmed();
});

test('a header section over server.maxHeaderSize answers 431 (default 16 KiB), also past the field count', async () => {
  const big = `GET / HTTP/1.1\r\nHost: a\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`;
  assert.equal(statusOf((await rawExchange(env.lb.httpPort, big)).text), 431);
  const many = `GET / HTTP/1.1\r\nHost: a\r\n${Array.from({ length: 300 }, (_, i) => `X-${i}: 1\r\n`).join('')}\r\n`;
  assert.equal(statusOf((await rawExchange(env.lb.httpPort, many)).text), 431);
  await env.assertUnharmed();
});

test('CONNECT answers 405, TRACE answers 405 (server.allowTrace off), OPTIONS * is answered by quiclb', async () => {
  const before = env.backends.reduce((n, b) => n + b.requests.length, 0);
  const connect = await rawExchange(env.lb.httpPort, 'CONNECT moodle.example.edu:443 HTTP/1.1\r\nHost: moodle.example.edu:443\r\n\r\n');
  assert.equal(statusOf(connect.text), 405, connect.text);
  assert.match(connect.text, /allow: /i);
  const trace = await rawExchange(env.lb.httpPort, 'TRACE / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n');
  assert.equal(statusOf(trace.text), 405, trace.text);
  const star = await rawExchange(env.lb.httpPort, 'OPTIONS * HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n');
  assert.equal(statusOf(star.text), 200, star.text);
  assert.match(star.text, /allow: GET/i);
  const starGet = await rawExchange(env.lb.httpPort, 'GET * HTTP/1.1\r\nHost: a\r\n\r\n');
  assert.equal(statusOf(starGet.text), 400, starGet.text);
  assert.equal(env.backends.reduce((n, b) => n + b.requests.length, 0), before, 'none of them reached a backend');
  await env.assertUnharmed();
});

test('pipelined requests are answered in order on one connection', async () => {
  const r = await rawExchange(
    env.lb.httpPort,
    'GET /p1 HTTP/1.1\r\nHost: a\r\n\r\nPOST /p2 HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabcGET /p3 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n',
  );
  assert.equal(r.text.match(/HTTP\/1\.1 200/g)?.length, 3, r.text);
  const targets = env.backends.flatMap((b) => b.requests).map((q) => q.target);
  for (const t of ['/p1', '/p2', '/p3']) assert.ok(targets.includes(t), t);
  const p2 = env.backends.flatMap((b) => b.requests).find((q) => q.target === '/p2')!;
  assert.equal(p2.body.toString(), 'abc');
});

test('a request answered before its body was read, whose body then breaks its chunked framing, closes the connection at once (was: open until server.readTimeout)', async () => {
  const { connect } = await import('node:net');
  const open = async () => (await env.stats()).shards.reduce((n: number, s: { connections: number }) => n + s.connections, 0);
  const before = await open();
  const socket = connect(env.lb.httpPort, '127.0.0.1');
  socket.on('error', () => undefined);
  let text = '';
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  socket.on('data', (c: Buffer) => (text += c.toString('latin1')));
  await new Promise((r) => socket.once('connect', r));
  // quiclb answers POST /health itself (405) without wanting the body; it then reads and drops the rest.
  socket.write('POST /health HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n');
  for (let i = 0; i < 50 && !/\r\n\r\n/.test(text); i++) await new Promise((r) => setTimeout(r, 20));
  assert.match(text, /^HTTP\/1\.1 405 /);
  // A broken chunk in the body being dropped: nothing after it can be framed, so quiclb closes.
  socket.write('zz\r\n');
  const outcome = await Promise.race([closed.then(() => 'closed'), new Promise((r) => setTimeout(() => r('still open'), 3000))]);
  socket.destroy();
  assert.equal(outcome, 'closed');
  let now = await open();
  for (let i = 0; i < 20 && now > before; i++) {
    await new Promise((r) => setTimeout(r, 100));
    now = await open();
  }
  assert.equal(now, before, 'the connection is no longer counted');
  await env.assertUnharmed();
});
