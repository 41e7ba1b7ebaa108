// Slow clients on HTTP/1.1 (plain and TLS): slowloris header sections, stalled bodies, TLS connections that
// never say hello, idle keep-alives, and clients that stop reading (see README.md here). Short timeouts,
// so each attack is over in seconds; every one must end by quiclb closing the connection.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import tls from 'node:tls';
import { setTimeout as sleep } from 'node:timers/promises';
import { startLbWithRawBackends, type LbWithRawBackends } from '../support/lb-with-raw-backends.ts';

let env: LbWithRawBackends;
const BIG = Buffer.alloc(64 * 1024 * 1024, 0x61);

before(async () => {
  env = await startLbWithRawBackends(
    1,
    {
      respond: (req) =>
        req.target.startsWith('/big')
          ? Buffer.concat([Buffer.from(`HTTP/1.1 200 OK\r\ncontent-length: ${BIG.length}\r\n\r\n`), BIG])
          : 'HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok',
    },
    { server: { readTimeout: '1s', writeTimeout: '1s', idleTimeout: '1s' } },
  );
});

after(async () => {
  await env?.stop();
});

/** Resolves with how long the server took to close the socket (or rejects after `limitMs`). */
function closedWithin(socket: net.Socket, limitMs: number): Promise<number> {
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`socket still open after ${limitMs} ms`)), limitMs);
    socket.once('close', () => {
      clearTimeout(timer);
      resolve(Date.now() - started);
    });
  });
}

function connect(port: number): Promise<net.Socket> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1', () => resolve(s));
    s.on('error', () => undefined);
  });
}

test('slowloris: 200 connections trickling a header section are all closed after server.readTimeout, with 408', async () => {
  const sockets = await Promise.all(Array.from({ length: 200 }, () => connect(env.lb.httpPort)));
  const answers = sockets.map(() => '');
  sockets.forEach((s, i) => s.on('data', (c) => (answers[i] += c.toString('latin1'))));
  const drip = setInterval(() => {
    for (const s of sockets) if (!s.destroyed) s.write('X-a: b\r\n');
  }, 200);
  for (const s of sockets) s.write('GET / HTTP/1.1\r\nHost: a\r\n');
  try {
    const times = await Promise.all(sockets.map((s) => closedWithin(s, 6000)));
    assert.ok(Math.max(...times) < 6000);
  } finally {
    clearInterval(drip);
  }
  assert.ok(answers.every((a) => a.startsWith('HTTP/1.1 408')), 'each got 408 Request Timeout');
  assert.equal(env.backends[0].requests.length, 0, 'no slowloris request reached the backend');
  await env.assertUnharmed();
});

test('a connection that never sends a byte is closed after server.readTimeout; so is a TLS one that never sends a ClientHello', async () => {
  const plain = await connect(env.lb.httpPort);
  const raw = await connect(env.lb.httpsPort); // no TLS at all
  plain.resume(); // read what the server sends (its 408), so 'end' and 'close' come
  raw.resume();
  const [a, b] = await Promise.all([closedWithin(plain, 5000), closedWithin(raw, 5000)]);
  assert.ok(a >= 800 && b >= 800, `not closed before the timeout (${a}, ${b} ms)`);
});

test('a TLS handshake left half-way is dropped too', async () => {
  const raw = await connect(env.lb.httpsPort);
  // The first bytes of a ClientHello record header, then nothing.
  raw.write(Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00, 0x01]));
  raw.resume();
  await closedWithin(raw, 5000);
});

test('a request body that stalls longer than server.readTimeout: 408 to the client, an aborted request at the backend', async () => {
  const s = await connect(env.lb.httpPort);
  let answer = '';
  s.on('data', (c) => (answer += c.toString('latin1')));
  s.write('POST /slow-body HTTP/1.1\r\nHost: a\r\nContent-Length: 1000\r\n\r\nfirst bytes');
  await closedWithin(s, 6000);
  assert.match(answer, /^HTTP\/1\.1 408/, answer);
  const req = env.backends[0].requests.find((r) => r.target === '/slow-body');
  if (req !== undefined) {
    const until = Date.now() + 3000;
    while (Date.now() < until && !req.aborted) await sleep(20);
    assert.equal(req.complete, false);
    assert.equal(req.aborted, true, 'the backend saw the request cut');
  }
  await env.assertUnharmed();
});

test('an idle keep-alive connection is closed after server.idleTimeout', async () => {
  const s = await connect(env.lb.httpPort);
  let answer = '';
  s.on('data', (c) => (answer += c.toString('latin1')));
  s.write('GET /one HTTP/1.1\r\nHost: a\r\n\r\n');
  const t = await closedWithin(s, 5000);
  assert.match(answer, /^HTTP\/1\.1 200/);
  assert.ok(t >= 800, `kept open until the idle timeout (${t} ms)`);
});

test('a client that stops reading a large response is dropped after server.writeTimeout, and the backend request is cancelled', async () => {
  for (const secure of [false, true]) {
    const target = `/big?${secure ? 'tls' : 'plain'}`;
    const s: net.Socket = secure
      ? tls.connect({ port: env.lb.httpsPort, host: '127.0.0.1', rejectUnauthorized: false, ALPNProtocols: ['http/1.1'] })
      : await connect(env.lb.httpPort);
    s.on('error', () => undefined);
    if (secure) await new Promise((r) => s.once('secureConnect', r));
    s.pause(); // never read: the socket buffers fill
    s.write(`GET ${target} HTTP/1.1\r\nHost: a\r\n\r\n`);
    // The backend connection that carries /big is closed once quiclb gives up on the client (the rest of
    // the 64 MiB was never wanted).
    let index = -1;
    const until = Date.now() + 10_000;
    while (Date.now() < until) {
      index = env.backends[0].connections.findIndex((c) => c.toString('latin1').includes(`GET ${target} `));
      if (index >= 0 && env.backends[0].closed[index]) break;
      await sleep(50);
    }
    assert.ok(index >= 0, 'the request reached the backend');
    assert.equal(env.backends[0].closed[index], true, `${secure ? 'TLS' : 'plain'}: backend request cancelled`);
    // And the client's connection was cut: reading now ends well short of the 64 MiB.
    let received = 0;
    s.on('data', (c: Buffer) => (received += c.length));
    s.resume();
    await closedWithin(s, 10_000);
    assert.ok(received < BIG.length, `the response was cut (${received} bytes)`);
  }
  await env.assertUnharmed();
});
