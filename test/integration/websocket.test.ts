// WebSocket through a real quiclb (one shard) to real WebSocket backends (test/support/ws-backend.ts): echo
// over ws:// and wss:// with undici's WebSocket client, over HTTP/2 extended CONNECT (RFC 8441) with
// node:http2, and over HTTP/3 extended CONNECT (RFC 9220) with the bench's HTTP/3 client; messages of 1 B to
// 1 MiB, fragmented ones, a backend that closes, refused handshakes, a wrong Sec-WebSocket-Accept, a
// non-WebSocket Upgrade, stickiness, and the bytes right after the 101. Limits (maxConnections, health),
// idle timeout and shutdown have their own quiclb further down.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { Agent, WebSocket } from 'undici';
import { startWsBackend, echo, acceptFor, type WsBackend, type Handshake } from '../support/ws-backend.ts';
import { startQuiclb, type QuiclbProcess } from '../support/quiclb-process.ts';
import { h2WebSocket, h3WebSocket, rawHttp1, handshakeRequest, type WsOpen } from '../support/ws-clients.ts';
import { WsPeer, encodeFrame, OP_TEXT } from '../support/ws-peer.ts';
import { getJson } from '../support/http-client.ts';
import { H3Connection } from '../../bench/lib/h3-client.ts';
import { freePort } from '../../bench/lib/procs.ts';
import { rng } from '../support/seeded-random.ts';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { startPrimary } from '../../src/primary/primary.ts';
import { validateConfig } from '../../src/config/load.ts';
import { WS_OPEN, WS_OPENED } from '../../src/shared/state.ts';

const SIZES = [1, 125, 126, 65_535, 65_536, 1024 * 1024];

function payload(size: number, seed: number): Buffer {
  const r = rng(seed);
  const b = Buffer.allocUnsafe(size);
  for (let i = 0; i < size; i++) b[i] = Math.floor(r() * 256);
  return b;
}

function text(size: number): string {
  return 'abcdefghijklmnopqrstuvwxyz0123456789'.repeat(Math.ceil(size / 36)).slice(0, size);
}

/** What the backends do, by path. */
function backendBehaviour(): Parameters<typeof startWsBackend>[0] {
  return {
    refuse: (h: Handshake) => (h.path === '/refuse' ? 'HTTP/1.1 403 Forbidden\r\ncontent-type: text/plain\r\ncontent-length: 9\r\nx-why: nope\r\n\r\nforbidden' : undefined),
    badAccept: (h: Handshake) => h.path === '/bad-accept',
    afterHead: (h: Handshake) => (h.path === '/raw-after-head' ? Buffer.from('HTTP/1.1 100 Continue\r\n\r\ntunnel bytes') : undefined),
    onPeer: (peer: WsPeer, h: Handshake) => {
      if (h.path === '/raw-after-head') return;
      if (h.path === '/close-after-1') {
        // Answers one message, then closes first (RFC 6455 §7.1.1: the server closes the TCP connection).
        void peer.next().then((m) => {
          if (m !== undefined) peer.sendText(`last: ${m.data.toString()}`);
          peer.close(1000, 'bye');
        });
        return;
      }
      void echo(peer);
    },
  };
}

interface UndiciWs {
  ws: WebSocket;
  next(): Promise<string | Buffer>;
  closed: Promise<{ code: number; reason: string }>;
}

async function undiciOpen(url: string, dispatcher?: Agent, protocols?: string[]): Promise<UndiciWs> {
  const ws = new WebSocket(url, { dispatcher, protocols });
  ws.binaryType = 'arraybuffer';
  const queue: Array<string | Buffer> = [];
  const waiters: Array<(m: string | Buffer) => void> = [];
  ws.addEventListener('message', (ev) => {
    const m = typeof ev.data === 'string' ? ev.data : Buffer.from(ev.data as ArrayBuffer);
    const w = waiters.shift();
    if (w) w(m);
    else queue.push(m);
  });
  const closed = new Promise<{ code: number; reason: string }>((resolve) => ws.addEventListener('close', (ev) => resolve({ code: ev.code, reason: ev.reason })));
  await new Promise<void>((resolve, reject) => {
    ws.addEventListener('open', () => resolve(), { once: true });
    ws.addEventListener('error', () => reject(new Error(`WebSocket to ${url} failed to open`)), { once: true });
  });
  return {
    ws,
    closed,
    next: () => {
      const m = queue.shift();
      if (m !== undefined) return Promise.resolve(m);
      return new Promise((resolve, reject) => {
        const t = setTimeout(() => reject(new Error('no message within 15 s')), 15_000);
        waiters.push((msg) => {
          clearTimeout(t);
          resolve(msg);
        });
      });
    },
  };
}

async function echoOverUndici(c: UndiciWs): Promise<void> {
  for (const [i, size] of SIZES.entries()) {
    const bin = payload(size, i);
    c.ws.send(bin);
    const got = await c.next();
    assert.ok(Buffer.isBuffer(got), `binary ${size} B comes back binary`);
    assert.ok(bin.equals(got), `binary message of ${size} B echoed intact`);
    const t = text(size);
    c.ws.send(t);
    assert.equal(await c.next(), t, `text message of ${size} B echoed intact`);
  }
}

async function echoOverPeer(peer: WsPeer, label: string): Promise<void> {
  for (const [i, size] of SIZES.entries()) {
    const bin = payload(size, 100 + i);
    peer.sendBinary(bin);
    const got = await peer.next(20_000);
    assert.ok(got !== undefined && got.binary && bin.equals(got.data), `${label}: binary message of ${size} B echoed intact`);
    const t = text(size);
    peer.sendText(t);
    const back = await peer.next(20_000);
    assert.equal(back?.data.toString(), t, `${label}: text message of ${size} B echoed intact`);
  }
  // A message in 5 fragments (RFC 6455 §5.4) comes back whole.
  const frag = payload(300_000, 7);
  peer.sendBinary(frag, 5);
  const got = await peer.next(20_000);
  assert.ok(got !== undefined && frag.equals(got.data), `${label}: fragmented message echoed`);
  // A ping in between is answered by the backend end to end.
  peer.ping(Buffer.from('are you there'));
  peer.sendText('after ping');
  assert.equal((await peer.next())?.data.toString(), 'after ping');
  assert.ok(peer.frames.some((f) => f.opcode === 0xa && f.payload.toString() === 'are you there'), `${label}: pong came back`);
  assert.deepEqual(peer.maskingErrors, [], `${label}: frames to the client are unmasked`);
}

async function closeCleanly(peer: WsPeer, label: string): Promise<void> {
  peer.close(1000, 'done');
  assert.equal(await peer.closeFrame(), 1000, `${label}: the backend answered the close`);
  await peer.closed;
}

describe('WebSocket through quiclb', () => {
  let a: WsBackend;
  let b: WsBackend;
  let lb: QuiclbProcess;
  const insecure = new Agent({ connect: { rejectUnauthorized: false } });

  before(async () => {
    a = await startWsBackend(backendBehaviour());
    b = await startWsBackend(backendBehaviour());
    lb = await startQuiclb({
      config: {
        healthCheck: { enabled: false },
        loadBalancer: {
          sessionPersistence: true,
          backendServers: [
            { id: 'ws-a', host: '127.0.0.1', port: a.port },
            { id: 'ws-b', host: '127.0.0.1', port: b.port },
          ],
        },
      },
      workers: 1,
    });
  });

  after(async () => {
    await lb?.stop();
    await a?.close();
    await b?.close();
    await insecure.close();
  });

  test('ws:// (HTTP/1.1): undici WebSocket echoes text and binary messages of 1 B to 1 MiB, then closes cleanly', { timeout: 60_000 }, async () => {
    const c = await undiciOpen(`ws://127.0.0.1:${lb.httpPort}/echo`);
    await echoOverUndici(c);
    c.ws.close(1000, 'bye');
    assert.equal((await c.closed).code, 1000);
    const hs = [...a.handshakes, ...b.handshakes].find((h) => h.headers['x-forwarded-proto'] === 'http');
    assert.ok(hs, 'the backend got the handshake');
    assert.equal(hs.headers.upgrade, 'websocket');
    assert.equal(hs.headers['sec-websocket-version'], '13');
    assert.ok(typeof hs.headers['sec-websocket-key'] === 'string', "the client's own key went through");
  });

  test('wss:// (HTTP/1.1 over TLS): the same echo and clean close', { timeout: 60_000 }, async () => {
    const c = await undiciOpen(`wss://127.0.0.1:${lb.httpsPort}/echo`, insecure, ['chat.v1', 'chat.v2']);
    assert.equal(c.ws.protocol, 'chat.v1', 'Sec-WebSocket-Protocol went to the backend and its choice came back');
    await echoOverUndici(c);
    c.ws.close(1000, 'bye');
    assert.equal((await c.closed).code, 1000);
  });

  test('HTTP/1.1: the client key goes to the backend as sent and the backend accept comes back', async () => {
    const { request, key } = handshakeRequest(lb.httpPort, '/echo', ['Sec-WebSocket-Protocol: x.one, x.two', 'Sec-WebSocket-Extensions: x-test-ext']);
    const r = await rawHttp1(lb.httpPort, request);
    assert.equal(r.status, 101, r.head);
    assert.match(r.head, new RegExp(`\\r\\nsec-websocket-accept: ${acceptFor(key).replace(/[+/=]/g, '\\$&')}\\r\\n`, 'i'));
    assert.match(r.head, /\r\nupgrade: websocket\r\n/i);
    assert.match(r.head, /\r\nconnection: upgrade\r\n/i);
    assert.match(r.head, /\r\nsec-websocket-protocol: x\.one\r\n/i);
    assert.match(r.head, /\r\nsec-websocket-extensions: x-test-ext\r\n/i);
    const hs = [...a.handshakes, ...b.handshakes].find((h) => h.headers['sec-websocket-key'] === key);
    assert.ok(hs, 'the backend got the client key unchanged');
    assert.equal(hs.headers['sec-websocket-protocol'], 'x.one, x.two');
    assert.equal(hs.headers['sec-websocket-extensions'], 'x-test-ext');
    const peer = new WsPeer(r.socket, { client: true, head: r.rest });
    r.socket.resume();
    await echoOverPeer(peer, 'raw HTTP/1.1');
    await closeCleanly(peer, 'raw HTTP/1.1');
  });

  test('a frame sent together with the handshake, before the answer, reaches the backend once it accepts (HTTP/1.1, HTTP/3)', { timeout: 30_000 }, async () => {
    const { request } = handshakeRequest(lb.httpPort, '/echo');
    const socket = net.connect(lb.httpPort, '127.0.0.1');
    socket.on('error', () => undefined);
    await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
    socket.write(Buffer.concat([Buffer.from(request), encodeFrame(OP_TEXT, Buffer.from('eager'), true)]));
    let buf = Buffer.alloc(0);
    await new Promise<void>((resolve) => {
      const onData = (c: Buffer): void => {
        buf = Buffer.concat([buf, c]);
        if (buf.indexOf('\r\n\r\n') < 0) return;
        socket.off('data', onData);
        socket.pause();
        resolve();
      };
      socket.on('data', onData);
    });
    const end = buf.indexOf('\r\n\r\n') + 4;
    assert.match(buf.subarray(0, end).toString('latin1'), /^HTTP\/1\.1 101 /);
    const peer = new WsPeer(socket, { client: true, head: buf.subarray(end) });
    socket.resume();
    assert.equal((await peer.next())?.data.toString(), 'eager');
    await closeCleanly(peer, 'HTTP/1.1 eager');
    const conn = await H3Connection.connect({ host: '127.0.0.1', port: lb.httpsPort });
    try {
      const c = await h3WebSocket(conn, lb.httpsPort, '/echo', [], encodeFrame(OP_TEXT, Buffer.from('eager over h3'), true));
      assert.equal(c.status, 200);
      assert.equal((await c.peer!.next())?.data.toString(), 'eager over h3');
      await closeCleanly(c.peer!, 'HTTP/3 eager');
    } finally {
      conn.close();
    }
  });

  test('HTTP/2 extended CONNECT (RFC 8441): 200 without Sec-WebSocket-Accept, quiclb keys the backend handshake itself, echo of 1 B to 1 MiB', { timeout: 60_000 }, async () => {
    const before = a.handshakes.length + b.handshakes.length;
    const c = await h2WebSocket(lb.httpsPort, '/echo', { 'sec-websocket-protocol': 'chat.v2', 'sec-websocket-extensions': 'x-test-ext' });
    try {
      assert.equal(c.enableConnectProtocol, true, 'SETTINGS_ENABLE_CONNECT_PROTOCOL = 1');
      assert.equal(c.status, 200);
      assert.equal(c.headers['sec-websocket-accept'], undefined, 'no Sec-WebSocket-Accept on HTTP/2 (RFC 8441 §5)');
      assert.equal(c.headers['sec-websocket-protocol'], 'chat.v2');
      assert.equal(c.headers['sec-websocket-extensions'], 'x-test-ext', 'the backend accepted extension comes back');
      const hs = [...a.handshakes, ...b.handshakes].slice(before)[0];
      assert.match(String(hs.headers['sec-websocket-key']), /^[A-Za-z0-9+/]{22}==$/, 'a fresh 16-octet key');
      assert.equal(hs.headers['sec-websocket-version'], '13');
      assert.equal(hs.headers['sec-websocket-extensions'], 'x-test-ext');
      assert.equal(hs.headers['x-forwarded-proto'], 'https');
      await echoOverPeer(c.peer!, 'HTTP/2');
      await closeCleanly(c.peer!, 'HTTP/2');
    } finally {
      c.close();
    }
  });

  test('HTTP/3 extended CONNECT (RFC 9220): SETTINGS_ENABLE_CONNECT_PROTOCOL, 200, DATA frames both ways, echo of 1 B to 1 MiB', { timeout: 90_000 }, async () => {
    const conn = await H3Connection.connect({ host: '127.0.0.1', port: lb.httpsPort });
    try {
      const deadline = Date.now() + 5000;
      while (conn.peerSettings === undefined && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
      assert.equal(conn.peerSettings?.get(0x8), 1, 'SETTINGS_ENABLE_CONNECT_PROTOCOL = 1 in our HTTP/3 SETTINGS');
      const before = a.handshakes.length + b.handshakes.length;
      const c = await h3WebSocket(conn, lb.httpsPort, '/echo', [['sec-websocket-protocol', 'chat.v3']]);
      assert.equal(c.status, 200);
      assert.equal(c.headers['sec-websocket-accept'], undefined);
      assert.equal(c.headers['sec-websocket-protocol'], 'chat.v3');
      const hs = [...a.handshakes, ...b.handshakes].slice(before)[0];
      assert.match(String(hs.headers['sec-websocket-key']), /^[A-Za-z0-9+/]{22}==$/);
      await echoOverPeer(c.peer!, 'HTTP/3');
      await closeCleanly(c.peer!, 'HTTP/3');
    } finally {
      conn.close();
    }
  });

  test('a backend that closes: the client gets its close frame and the connection ends, on every protocol', { timeout: 60_000 }, async () => {
    // HTTP/1.1 (undici)
    const c1 = await undiciOpen(`ws://127.0.0.1:${lb.httpPort}/close-after-1`);
    c1.ws.send('one');
    assert.equal(await c1.next(), 'last: one');
    assert.deepEqual(await c1.closed, { code: 1000, reason: 'bye' });
    // HTTP/2
    const c2 = await h2WebSocket(lb.httpsPort, '/close-after-1');
    c2.peer!.sendText('two');
    assert.equal((await c2.peer!.next())?.data.toString(), 'last: two');
    assert.equal(await c2.peer!.closeFrame(), 1000);
    assert.equal(c2.peer!.closeReason, 'bye');
    await c2.peer!.closed;
    c2.close();
    // HTTP/3
    const conn = await H3Connection.connect({ host: '127.0.0.1', port: lb.httpsPort });
    try {
      const c3 = await h3WebSocket(conn, lb.httpsPort, '/close-after-1');
      c3.peer!.sendText('three');
      assert.equal((await c3.peer!.next())?.data.toString(), 'last: three');
      assert.equal(await c3.peer!.closeFrame(), 1000);
      await c3.peer!.closed;
    } finally {
      conn.close();
    }
  });

  test('a refused handshake (403) reaches the client as a normal response, on every protocol', { timeout: 30_000 }, async () => {
    const { request } = handshakeRequest(lb.httpPort, '/refuse');
    const r1 = await rawHttp1(lb.httpPort, request);
    assert.equal(r1.status, 403);
    assert.match(r1.head, /\r\nx-why: nope\r\n/i);
    r1.socket.destroy();
    const r2 = await h2WebSocket(lb.httpsPort, '/refuse');
    assert.equal(r2.status, 403);
    assert.equal(r2.headers['x-why'], 'nope');
    assert.equal(r2.peer, undefined);
    r2.close();
    const conn = await H3Connection.connect({ host: '127.0.0.1', port: lb.httpsPort });
    try {
      const r3: WsOpen = await h3WebSocket(conn, lb.httpsPort, '/refuse');
      assert.equal(r3.status, 403);
      assert.equal(r3.headers['x-why'], 'nope');
    } finally {
      conn.close();
    }
  });

  test('a backend 101 with a wrong Sec-WebSocket-Accept: HTTP/2 and HTTP/3 clients get 502 (quiclb checks it for them)', { timeout: 30_000 }, async () => {
    const r2 = await h2WebSocket(lb.httpsPort, '/bad-accept');
    assert.equal(r2.status, 502);
    r2.close();
    const conn = await H3Connection.connect({ host: '127.0.0.1', port: lb.httpsPort });
    try {
      assert.equal((await h3WebSocket(conn, lb.httpsPort, '/bad-accept')).status, 502);
    } finally {
      conn.close();
    }
  });

  test('the bytes right after the 101 reach the client untouched, even when they look like an HTTP 100 response', async () => {
    const { request } = handshakeRequest(lb.httpPort, '/raw-after-head');
    const r = await rawHttp1(lb.httpPort, request);
    assert.equal(r.status, 101);
    let got = r.rest;
    const want = 'HTTP/1.1 100 Continue\r\n\r\ntunnel bytes';
    r.socket.on('data', (c: Buffer) => (got = Buffer.concat([got, c])));
    r.socket.resume();
    const deadline = Date.now() + 5000;
    while (got.length < want.length && Date.now() < deadline) await new Promise((res) => setTimeout(res, 10));
    assert.equal(got.toString('latin1'), want);
    r.socket.destroy();
  });

  test('a non-WebSocket Upgrade (h2c) is answered as a plain request without the upgrade fields, and the connection closes', async () => {
    const before = a.plain.length + b.plain.length;
    const r = await rawHttp1(
      lb.httpPort,
      `GET /plain HTTP/1.1\r\nHost: 127.0.0.1:${lb.httpPort}\r\nUpgrade: h2c\r\nConnection: Upgrade, HTTP2-Settings\r\nHTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA\r\n\r\n`,
    );
    assert.equal(r.status, 200, r.head);
    assert.match(r.head, /\r\nconnection: close\r\n/i);
    assert.doesNotMatch(r.head, /\r\nupgrade:/i);
    const closed = new Promise<void>((resolve) => r.socket.once('close', () => resolve()));
    r.socket.resume();
    await closed;
    const seen = [...a.plain, ...b.plain].slice(before);
    assert.equal(seen.length, 1);
    assert.equal(seen[0].headers.upgrade, undefined);
    assert.equal(seen[0].headers['http2-settings'], undefined);
    // A POST with Upgrade: websocket is no handshake either (RFC 6455 §4.1: GET only).
    const p = await rawHttp1(lb.httpPort, `POST /plain HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nContent-Length: 0\r\n\r\n`);
    assert.notEqual(p.status, 101);
    p.socket.destroy();
  });

  test('stickiness: a new WebSocket client gets the affinity cookie with its answer, and with it stays on that backend', { timeout: 30_000 }, async () => {
    const first = await h2WebSocket(lb.httpsPort, '/echo');
    const cookie = String(first.headers['set-cookie'] ?? '').split(';')[0];
    const pinned = first.headers['x-backend'];
    assert.match(cookie, /^QUICLB_AFFINITY=/);
    await closeCleanly(first.peer!, 'first');
    first.close();
    const seen = new Set<string>();
    for (let i = 0; i < 4; i++) {
      const { request } = handshakeRequest(lb.httpPort, '/echo', [`Cookie: ${cookie}`]);
      const r = await rawHttp1(lb.httpPort, request);
      assert.equal(r.status, 101);
      seen.add(/\r\nx-backend: (\d+)/i.exec(r.head)![1]);
      r.socket.destroy();
    }
    assert.deepEqual([...seen], [pinned], 'every WebSocket with the cookie went to the pinned backend');
    const spread = new Set<string>();
    for (let i = 0; i < 4; i++) {
      const { request } = handshakeRequest(lb.httpPort, '/echo');
      const r = await rawHttp1(lb.httpPort, request);
      spread.add(/\r\nx-backend: (\d+)/i.exec(r.head)![1]);
      r.socket.destroy();
    }
    assert.equal(spread.size, 2, 'without the cookie the strategy spreads them');
  });

  test('/stats and /metrics count open tunnels per shard and the total opened; no shard error on the way', async () => {
    const c = await undiciOpen(`ws://127.0.0.1:${lb.httpPort}/echo`);
    const s = (await getJson(`http://127.0.0.1:${lb.httpPort}/stats`)).body;
    assert.ok(s.webSockets.open >= 1, JSON.stringify(s.webSockets));
    assert.ok(s.webSockets.opened >= 10);
    assert.equal(s.shards[0].webSockets.open, s.webSockets.open);
    const m = await (await fetch(`http://127.0.0.1:${lb.httpPort}/metrics`)).text();
    assert.match(m, /quiclb_websocket_tunnels\{shard="0"\} [1-9]/);
    assert.match(m, /quiclb_websocket_tunnels_opened_total\{shard="0"\} \d+/);
    c.ws.close();
    await c.closed;
    const deadline = Date.now() + 8000;
    let open = -1;
    let active = -1;
    while (Date.now() < deadline) {
      const now = (await getJson(`http://127.0.0.1:${lb.httpPort}/stats`)).body;
      open = now.webSockets.open;
      active = now.backends.reduce((n: number, x: { activeConnections: number }) => n + x.activeConnections, 0);
      if (open === 0 && active === 0) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.equal(open, 0, 'every tunnel closed is counted closed');
    assert.equal(active, 0, 'no backend keeps a connection counted');
    assert.equal(s.uncaughtErrors, 0);
    assert.equal(s.shardRestarts, 0);
  });
});

describe('WebSocket limits: maxConnections and health', () => {
  let live: WsBackend;
  let lb: QuiclbProcess;
  let deadPort: number;

  before(async () => {
    live = await startWsBackend();
    deadPort = await freePort(); // nothing listens there: connections are refused
    lb = await startQuiclb({
      config: {
        // One refused connection marks a backend down (passive health).
        healthCheck: { enabled: false, passiveFailureThreshold: 1 },
        loadBalancer: {
          sessionPersistence: false,
          strategy: 'round_robin',
          backendServers: [
            { id: 'dead', host: '127.0.0.1', port: deadPort },
            { id: 'live', host: '127.0.0.1', port: live.port, maxConnections: 1 },
          ],
        },
      },
      workers: 1,
    });
  });

  after(async () => {
    await lb?.stop();
    await live?.close();
  });

  test('a backend that refuses connections is retried away from and marked down; an open tunnel counts against maxConnections until it closes', { timeout: 30_000 }, async () => {
    // Round robin starts at "dead": its refusal is retried on "live" and marks "dead" down.
    const c = await undiciOpen(`ws://127.0.0.1:${lb.httpPort}/echo`);
    c.ws.send('through');
    assert.equal(await c.next(), 'through');
    const s = (await getJson(`http://127.0.0.1:${lb.httpPort}/stats`)).body;
    const dead0 = s.backends.find((x: { id: string }) => x.id === 'dead');
    assert.equal(dead0.failovers, 1, 'the handshake was retried away from the refusing backend');
    assert.equal(dead0.healthy, false, 'passive health marked it down');
    const live0 = s.backends.find((x: { id: string }) => x.id === 'live');
    assert.equal(live0.activeConnections, 1, 'the open tunnel counts as a connection of its backend');
    // The only live backend is at maxConnections (1) while the tunnel is open: no second one, no request.
    const { request } = handshakeRequest(lb.httpPort, '/echo');
    const r = await rawHttp1(lb.httpPort, request);
    assert.equal(r.status, 503, r.head);
    r.socket.destroy();
    const plain = await fetch(`http://127.0.0.1:${lb.httpPort}/page`);
    assert.equal(plain.status, 503, 'a plain request sees the same limit');
    await plain.arrayBuffer();
    c.ws.close();
    await c.closed;
    // Closed: the connection is given back, and a new WebSocket goes through.
    const deadline = Date.now() + 8000;
    for (;;) {
      const now = (await getJson(`http://127.0.0.1:${lb.httpPort}/stats`)).body;
      if (now.backends.find((x: { id: string }) => x.id === 'live').activeConnections === 0) break;
      assert.ok(Date.now() < deadline, 'the tunnel gave its connection back');
      await new Promise((res) => setTimeout(res, 50));
    }
    const again = await undiciOpen(`ws://127.0.0.1:${lb.httpPort}/echo`);
    again.ws.send('again');
    assert.equal(await again.next(), 'again');
    again.ws.close();
    await again.closed;
  });
});

describe('websocket.idleTimeout', () => {
  let be: WsBackend;
  let lb: QuiclbProcess;

  before(async () => {
    be = await startWsBackend();
    lb = await startQuiclb({
      config: {
        healthCheck: { enabled: false },
        websocket: { idleTimeout: '1s' },
        loadBalancer: { backendServers: [{ id: 'ws', host: '127.0.0.1', port: be.port }] },
      },
      workers: 1,
    });
  });

  after(async () => {
    await lb?.stop();
    await be?.close();
  });

  test('a tunnel with no byte either way for idleTimeout is closed with 1001 to both sides; traffic keeps one open', { timeout: 30_000 }, async () => {
    const busy = await h2WebSocket(lb.httpsPort, '/echo');
    const quiet = await h2WebSocket(lb.httpsPort, '/echo');
    const started = Date.now();
    // `busy` talks every 300 ms for 2.5 s; `quiet` says nothing.
    while (Date.now() - started < 2500) {
      busy.peer!.sendText('tick');
      assert.equal((await busy.peer!.next())?.data.toString(), 'tick');
      await new Promise((r) => setTimeout(r, 300));
    }
    assert.equal(await quiet.peer!.closeFrame(1000), 1001, 'the quiet client got close 1001');
    assert.equal(quiet.peer!.closeReason, 'idle timeout');
    await quiet.peer!.closed;
    const backendSide = be.peers[1];
    assert.equal(await backendSide.closeFrame(3000), 1001, 'the backend got close 1001 too');
    assert.deepEqual(backendSide.maskingErrors, [], "quiclb's close frame to the backend is masked");
    assert.equal(busy.peer!.closeCode, undefined, 'the busy tunnel stays open');
    busy.peer!.sendText('still here');
    assert.equal((await busy.peer!.next())?.data.toString(), 'still here');
    busy.close();
    quiet.close();
  });
});

describe('graceful shutdown', () => {
  let be: WsBackend;
  let lb: QuiclbProcess;

  before(async () => {
    be = await startWsBackend();
    lb = await startQuiclb({
      config: {
        server: { shutdownTimeout: '1s' },
        healthCheck: { enabled: false },
        loadBalancer: { backendServers: [{ id: 'ws', host: '127.0.0.1', port: be.port }] },
      },
      workers: 1,
    });
  });

  after(async () => {
    await lb?.stop();
    await be?.close();
  });

  test('SIGTERM: after the drain timeout every tunnel gets close 1001 on both sides (HTTP/1.1, HTTP/2, HTTP/3), and quiclb exits 0', { timeout: 30_000 }, async () => {
    const h1 = await undiciOpen(`ws://127.0.0.1:${lb.httpPort}/echo`);
    const h2 = await h2WebSocket(lb.httpsPort, '/echo');
    const conn = await H3Connection.connect({ host: '127.0.0.1', port: lb.httpsPort });
    const h3 = await h3WebSocket(conn, lb.httpsPort, '/echo');
    h1.ws.send('x');
    assert.equal(await h1.next(), 'x');
    h2.peer!.sendText('y');
    assert.equal((await h2.peer!.next())?.data.toString(), 'y');
    h3.peer!.sendText('z');
    assert.equal((await h3.peer!.next())?.data.toString(), 'z');
    assert.equal(be.peers.length, 3);
    const stopped = lb.stop('SIGTERM');
    const [c1, c2, c3] = await Promise.all([h1.closed, h2.peer!.closeFrame(5000), h3.peer!.closeFrame(5000)]);
    assert.equal(c1.code, 1001, 'HTTP/1.1 client got 1001');
    assert.equal(c2, 1001, 'HTTP/2 client got 1001');
    assert.equal(c3, 1001, 'HTTP/3 client got 1001');
    for (const p of be.peers) {
      assert.equal(await p.closeFrame(3000), 1001, 'the backend got 1001');
      assert.deepEqual(p.maskingErrors, []);
    }
    assert.equal(await stopped, 0);
    h2.close();
    conn.close();
  });
});

test('a shard that dies loses its tunnels: the restarted shard counts none open, the opened total stays', { timeout: 60_000 }, async () => {
  const be = await startWsBackend();
  const config = validateConfig({
    server: { httpPort: await freePort(), httpsPort: await freePort(), bindAddress: '127.0.0.1', shutdownTimeout: '1s' },
    tls: { stateDir: path.join(await mkdtemp(path.join(tmpdir(), 'quiclb-ws-restart-')), 'state') },
    quic: { enabled: false },
    healthCheck: { enabled: false },
    logging: { level: 'silent', accessLog: false },
    loadBalancer: { backendServers: [{ id: 'ws', host: '127.0.0.1', port: be.port }] },
  });
  const primary = await startPrimary({ config, workers: 1, logger: pino({ level: 'silent' }) });
  try {
    const c = await undiciOpen(`ws://127.0.0.1:${config.server.httpPort}/echo`);
    c.ws.send('before');
    assert.equal(await c.next(), 'before');
    assert.equal(primary.state.webSocketCounter(0, WS_OPEN), 1n);
    await primary.supervisor.kill(0);
    assert.equal((await c.closed).code, 1006, 'the client saw its connection drop');
    const deadline = Date.now() + 15_000;
    while (!(primary.supervisor.alive(0) && primary.state.webSocketCounter(0, WS_OPEN) === 0n)) {
      assert.ok(Date.now() < deadline, 'the restarted shard starts with no open tunnel');
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.equal(primary.state.webSocketCounter(0, WS_OPENED), 1n);
  } finally {
    await primary.stop();
    await be.close();
  }
});
