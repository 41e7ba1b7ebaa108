// The WebSocket tunnel (src/proxy/websocket-tunnel.ts) between two real TCP connections on 127.0.0.1, in
// process: quiclb's close frame goes in only between frames (a frame in progress finishes first), masked
// toward the backend; a reader that stops reading stops the writer on the other side (backpressure) and
// nothing piles up in between; the idle timeout; one side's abrupt end ends the other.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { Tunnel } from '../../src/proxy/websocket-tunnel.ts';
import { createLogger } from '../../src/shared/logger.ts';
import { FrameParser, WsPeer, encodeFrame, OP_BINARY, OP_CLOSE } from '../support/ws-peer.ts';

const logger = createLogger({ level: 'fatal', format: 'json' });

/** Two ends of one loopback TCP connection: [the side the tunnel gets, the test's side]. */
async function pair(): Promise<[net.Socket, net.Socket]> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const accepted = new Promise<net.Socket>((resolve) => server.once('connection', resolve));
  const outer = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1');
  const inner = await accepted;
  server.close();
  await new Promise<void>((resolve) => (outer.readyState === 'open' ? resolve() : outer.once('connect', () => resolve())));
  inner.pause();
  return [inner, outer];
}

interface Rig {
  tunnel: Tunnel;
  /** The test's client end and backend end. */
  client: net.Socket;
  backend: net.Socket;
  closed: Promise<void>;
  closes: number;
}

async function rig(idleTimeoutMs = 0): Promise<Rig> {
  const [tunnelClient, client] = await pair();
  const [tunnelBackend, backend] = await pair();
  let done!: () => void;
  const closed = new Promise<void>((r) => (done = r));
  const r = {} as Rig;
  r.closes = 0;
  r.client = client;
  r.backend = backend;
  r.closed = closed;
  r.tunnel = new Tunnel(tunnelClient, tunnelBackend, {
    idleTimeoutMs,
    logger,
    onClose: () => {
      r.closes++;
      done();
    },
  });
  return r;
}

async function until(cond: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

test('goAway: the close frame waits for the frame in progress, is masked toward the backend, and both sides end', async () => {
  const r = await rig();
  const toBackend = new FrameParser();
  const atBackend: ReturnType<FrameParser['push']> = [];
  let backendBytes = 0;
  r.backend.on('data', (c: Buffer) => {
    backendBytes += c.length;
    atBackend.push(...toBackend.push(c));
  });
  // The client side is read by hand: it keeps its own side open after quiclb's close, as a client may.
  const toClient = new FrameParser();
  const atClient: ReturnType<FrameParser['push']> = [];
  r.client.on('data', (c: Buffer) => atClient.push(...toClient.push(c)));
  const frame = encodeFrame(OP_BINARY, Buffer.alloc(10_000, 7), true);
  r.client.write(frame.subarray(0, 100));
  await until(() => backendBytes === 100, 'the first 100 bytes at the backend');
  r.tunnel.goAway(1001, 'server shutting down', 3000);
  // The client direction was between frames: its close frame goes at once (unmasked, RFC 6455 §5.1).
  await until(() => atClient.length === 1, 'the close at the client');
  assert.equal(atClient[0].opcode, OP_CLOSE);
  assert.equal(atClient[0].masked, false);
  assert.equal(atClient[0].payload.readUInt16BE(0), 1001);
  assert.equal(atClient[0].payload.subarray(2).toString(), 'server shutting down');
  await new Promise((res) => setTimeout(res, 100));
  assert.equal(backendBytes, 100, 'nothing goes into the middle of the frame toward the backend');
  // The rest of the frame, then more the client sends after it: the frame completes, then the close, then nothing.
  r.client.write(Buffer.concat([frame.subarray(100), encodeFrame(OP_BINARY, Buffer.from('late'), true)]));
  await until(() => atBackend.length === 2, 'the frame and the close at the backend');
  assert.equal(atBackend[0].opcode, OP_BINARY);
  assert.equal(atBackend[0].payload.length, 10_000);
  assert.equal(atBackend[1].opcode, OP_CLOSE);
  assert.equal(atBackend[1].masked, true, "quiclb's close toward the backend is masked");
  assert.equal(atBackend[1].payload.readUInt16BE(0), 1001);
  await until(() => r.backend.readableEnded, 'the end of the backend connection');
  assert.equal(atBackend.length, 2, 'the late frame was not forwarded after the close');
  r.client.end();
  r.backend.end();
  await r.closed;
  assert.equal(r.closes, 1);
});

test('backpressure: a client that stops reading stops the backend side; nothing piles up in the tunnel; every byte arrives once it reads again', { timeout: 60_000 }, async () => {
  const r = await rig();
  r.client.pause();
  const chunk = encodeFrame(OP_BINARY, Buffer.alloc(1024 * 1024, 9), false);
  const total = 32 * chunk.length;
  let written = 0;
  let sawBackpressure = false;
  const writeMore = (): void => {
    while (written < total) {
      written += chunk.length;
      if (!r.backend.write(chunk)) {
        sawBackpressure = true;
        r.backend.once('drain', writeMore);
        return;
      }
    }
  };
  writeMore();
  // Let the kernel buffers fill: then the tunnel must have stopped reading the backend.
  await until(() => (r.tunnel.backend as net.Socket).isPaused(), 'the tunnel to pause the backend side', 10_000);
  await new Promise((res) => setTimeout(res, 300));
  const queued = (r.tunnel.client as net.Socket).writableLength;
  assert.ok(queued <= 2 * chunk.length, `the tunnel holds at most about one chunk for the slow client (${queued} bytes)`);
  assert.ok(sawBackpressure, "the backend's writes were held back too");
  assert.ok(r.backend.writableLength > 0, 'the rest waits at the sender');
  let received = 0;
  r.client.on('data', (c: Buffer) => (received += c.length));
  r.client.resume();
  await until(() => received === total, 'all 32 MiB at the client', 50_000);
  r.client.destroy();
  await r.closed;
});

test('idle timeout: traffic keeps the tunnel open; silence closes it with 1001 to both sides', async () => {
  const r = await rig(300);
  const clientPeer = new WsPeer(r.client, { client: true });
  const backendPeer = new WsPeer(r.backend, { client: false });
  for (let i = 0; i < 6; i++) {
    clientPeer.sendText(`tick ${i}`);
    assert.equal((await backendPeer.next())?.data.toString(), `tick ${i}`);
    await new Promise((res) => setTimeout(res, 100));
  }
  assert.equal(clientPeer.closeCode, undefined, 'still open after 600 ms of traffic');
  assert.equal(await clientPeer.closeFrame(5000), 1001);
  assert.equal(clientPeer.closeReason, 'idle timeout');
  assert.equal(await backendPeer.closeFrame(5000), 1001);
  assert.deepEqual(backendPeer.maskingErrors, []);
  await r.closed;
});

test('a side that goes away abruptly takes the other with it, and the tunnel closes once', async () => {
  const r = await rig();
  let backendClosed = false;
  r.backend.on('close', () => (backendClosed = true));
  r.backend.on('error', () => undefined);
  r.client.resetAndDestroy();
  await r.closed;
  await until(() => backendClosed, 'the backend connection to close');
  assert.equal(r.closes, 1);
});
