// server.readTimeout, server.writeTimeout and server.idleTimeout on HTTP/2, through the real quiclb with
// short timeouts: each one resets or closes exactly what it is about (a stalled upload, a response the
// client stopped reading, a connection with no open stream), and none of them cuts off a slow backend.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startQuiclb } from '../support/quiclb-process.ts';
import type { QuiclbProcess } from '../support/quiclb-process.ts';
import { startRawBackend, OK_RESPONSE } from '../support/raw-answer-backend.ts';
import type { RawBackend, RawRequest } from '../support/raw-answer-backend.ts';
import { RawH2, FRAME, H2_ERROR } from '../support/h2-raw.ts';

const BIG = 256 * 1024;

function answer(req: RawRequest): string | undefined {
  if (req.target.startsWith('/upload')) return undefined;
  if (req.target.startsWith('/big')) return `HTTP/1.1 200 OK\r\ncontent-length: ${BIG}\r\n\r\n${'b'.repeat(BIG)}`;
  if (req.target.startsWith('/slow')) {
    // Headers at once, the body 2.5 s later: longer than every timeout here, and not the client's fault.
    setTimeout(() => req.conn.socket.write('late'), 2500);
    return 'HTTP/1.1 200 OK\r\ncontent-length: 4\r\n\r\n';
  }
  return OK_RESPONSE;
}

let backend: RawBackend;
/** readTimeout and writeTimeout 1 s, idleTimeout 30 s. */
let rw: QuiclbProcess;
/** idleTimeout 1 s, readTimeout and writeTimeout 30 s. */
let idle: QuiclbProcess;

before(async () => {
  backend = await startRawBackend(answer);
  const base = {
    loadBalancer: { backendServers: [{ id: 'raw', host: backend.host, port: backend.port }], sessionPersistence: false },
    healthCheck: { enabled: false },
    quic: { enabled: false },
  };
  rw = await startQuiclb({ config: { ...base, server: { readTimeout: '1s', writeTimeout: '1s', idleTimeout: '30s' } }, workers: 1 });
  idle = await startQuiclb({ config: { ...base, server: { readTimeout: '30s', writeTimeout: '30s', idleTimeout: '1s' } }, workers: 1 });
});

after(async () => {
  await rw?.stop();
  await idle?.stop();
  await backend?.close();
});

const post = (path: string): Array<[string, string]> => [[':method', 'POST'], [':scheme', 'https'], [':authority', 'a.test'], [':path', path]];
const get = (path: string): Array<[string, string]> => [[':method', 'GET'], [':scheme', 'https'], [':authority', 'a.test'], [':path', path]];
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function backendRequest(path: string): Promise<RawRequest> {
  for (let i = 0; i < 250; i++) {
    const r = backend.requests.find((x) => x.target === path);
    if (r) return r;
    await sleep(20);
  }
  throw new Error(`${path} never reached the backend`);
}

test('readTimeout: an upload that pauses longer is reset (the backend request is aborted); one that keeps trickling is not', async () => {
  const c = await RawH2.connect(rw.httpsPort);
  try {
    // Trickles 100 bytes every 400 ms for 2.4 s: never idle for 1 s.
    c.request(1, post('/upload-trickle'), false);
    for (let i = 0; i < 6; i++) {
      c.write(c.dataFrame(1, Buffer.alloc(100, 0x74), false));
      await sleep(400);
    }
    assert.equal(c.frames.filter((f) => f.stream === 1 && f.type === FRAME.RST_STREAM).length, 0, c.describe());
    // Pauses after its first DATA frame.
    const started = Date.now();
    c.request(3, post('/upload-stall'), false);
    c.write(c.dataFrame(3, Buffer.alloc(1000, 0x73), false));
    assert.deepEqual(await c.outcome(3, 10_000), { reset: H2_ERROR.CANCEL });
    assert.ok(Date.now() - started >= 900, `reset after ${Date.now() - started} ms`);
    const stalled = await backendRequest('/upload-stall');
    await Promise.race([stalled.conn.closed, sleep(5000).then(() => assert.fail('the backend request was not aborted'))]);
    assert.ok(!stalled.conn.text().endsWith('\r\n0\r\n\r\n'));
    // The connection itself is fine.
    c.request(5, get('/after'));
    const after = await c.outcome(5);
    assert.ok('status' in after && after.status === 200, JSON.stringify(after));
  } finally {
    c.close();
  }
});

test('writeTimeout: a response the client stops reading (window closed) is reset and its backend request aborted; a slow backend is not', async () => {
  // First a slow backend: the client reads, nothing is written for 2.5 s, and that is not a timeout.
  const reader = await RawH2.connect(rw.httpsPort);
  try {
    reader.request(1, get('/slow'));
    const r = await reader.outcome(1, 10_000);
    assert.ok('status' in r && r.status === 200, JSON.stringify(r));
    await reader.waitFor((f) => f.stream === 1 && f.type === FRAME.DATA && (f.flags & 1) === 1, 10_000, 'the end of the slow body');
    assert.equal(reader.body(1).toString(), 'late');
    assert.equal(reader.frames.filter((f) => f.type === FRAME.RST_STREAM).length, 0, reader.describe());
  } finally {
    reader.close();
  }
  // A client that grants no stream window at all: response headers arrive, DATA never can.
  const stuck = await RawH2.connect(rw.httpsPort, { initialWindowSize: 0 });
  try {
    stuck.request(1, get('/big-stuck'));
    const head = await stuck.waitFor((f) => f.stream === 1 && f.type === FRAME.HEADERS, 5000, 'response headers');
    assert.ok(head.fields!.some(([n, v]) => n === ':status' && v === '200'));
    const headersAt = Date.now();
    const rst = await stuck.waitFor((f) => f.stream === 1 && f.type === FRAME.RST_STREAM, 10_000, 'RST_STREAM');
    assert.equal(rst.payload.readUInt32BE(0), H2_ERROR.CANCEL);
    assert.ok(Date.now() - headersAt >= 900, `reset ${Date.now() - headersAt} ms after the headers`);
    const big = await backendRequest('/big-stuck');
    await Promise.race([big.conn.closed, sleep(5000).then(() => assert.fail('the backend request was not aborted'))]);
  } finally {
    stuck.close();
  }
});

test('idleTimeout: a connection with no open stream gets GOAWAY(NO_ERROR) and is closed; one waiting for a slow response is not', async () => {
  const c = await RawH2.connect(idle.httpsPort);
  try {
    // A request slower than idleTimeout: the stream is open, so the connection is not idle.
    c.request(1, get('/slow-idle'));
    await c.waitFor((f) => f.stream === 1 && f.type === FRAME.DATA && (f.flags & 1) === 1, 10_000, 'the end of the slow body');
    assert.equal(c.body(1).toString(), 'late');
    assert.equal(c.goaway(), undefined, 'no GOAWAY while a stream was open');
    const doneAt = Date.now();
    const goaway = await c.waitFor((f) => f.type === FRAME.GOAWAY, 10_000, 'GOAWAY');
    assert.equal(goaway.payload.readUInt32BE(4), H2_ERROR.NO_ERROR);
    assert.equal(goaway.payload.readUInt32BE(0) & 0x7fffffff, 1, 'last stream id');
    assert.ok(Date.now() - doneAt >= 900, `GOAWAY ${Date.now() - doneAt} ms after the last stream`);
    for (let i = 0; i < 100 && !c.closed; i++) await sleep(50);
    assert.ok(c.closed, 'the connection was closed after GOAWAY');
  } finally {
    c.close();
  }
});
