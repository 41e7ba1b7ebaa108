// HTTP/2 flood guards of the frontend, in-process with the hand-written client: the SETTINGS it advertises,
// SETTINGS_MAX_CONCURRENT_STREAMS enforced, and PING and SETTINGS floods from a client that reads nothing
// (CVE-2019-9512, CVE-2019-9515) cut off instead of buffered without bound.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { FrontResponse } from '../../src/shared/http-types.ts';
import { startFrontend } from '../support/h2-frontend-harness.ts';
import type { FrontendHarness } from '../support/h2-frontend-harness.ts';
import { RawH2, FRAME, FLAG, H2_ERROR, headerBlock } from '../support/h2-raw.ts';

const LIMITS = { maxConcurrentStreams: 8, maxHeaderSize: 16 * 1024 };
let h: FrontendHarness;
let port: number;
/** Requests are held (never answered). */
const held: FrontResponse[] = [];

before(async () => {
  h = await startFrontend((_req, res) => held.push(res), LIMITS);
  port = h.port;
});

after(() => h.close());

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const block = headerBlock([[':method', 'GET'], [':scheme', 'https'], [':authority', 'a.test'], [':path', '/']]);

test('SETTINGS advertise maxConcurrentStreams and maxHeaderSize, push off; a stream over the limit is refused and never dispatched', async () => {
  const c = await RawH2.connect(port);
  try {
    const settings = await c.waitFor((f) => f.type === FRAME.SETTINGS && (f.flags & FLAG.ACK) === 0, 5000, 'SETTINGS');
    const values = new Map<number, number>();
    for (let i = 0; i + 6 <= settings.payload.length; i += 6) values.set(settings.payload.readUInt16BE(i), settings.payload.readUInt32BE(i + 2));
    assert.equal(values.get(0x3), LIMITS.maxConcurrentStreams, 'SETTINGS_MAX_CONCURRENT_STREAMS');
    assert.equal(values.get(0x6), LIMITS.maxHeaderSize, 'SETTINGS_MAX_HEADER_LIST_SIZE');
    assert.equal(values.get(0x2), 0, 'SETTINGS_ENABLE_PUSH');
    await c.waitFor((f) => f.type === FRAME.SETTINGS && (f.flags & FLAG.ACK) === 1, 5000, 'SETTINGS ACK');
    await sleep(50);
    const before = held.length;
    for (let i = 0; i < LIMITS.maxConcurrentStreams; i++) c.write(c.headersFrame(1 + 2 * i, block, true));
    for (let i = 0; i < 100 && held.length - before < LIMITS.maxConcurrentStreams; i++) await sleep(20);
    assert.equal(held.length - before, LIMITS.maxConcurrentStreams);
    // RFC 9113 §5.1.2: one more is a protocol error; nghttp2 answers it with GOAWAY(PROTOCOL_ERROR)
    // naming the last stream it accepted.
    c.write(c.headersFrame(1 + 2 * LIMITS.maxConcurrentStreams, block, true));
    const goaway = await c.waitFor((f) => f.type === FRAME.GOAWAY, 5000, 'GOAWAY');
    assert.equal(goaway.payload.readUInt32BE(4), H2_ERROR.PROTOCOL_ERROR);
    assert.equal(goaway.payload.readUInt32BE(0), 2 * LIMITS.maxConcurrentStreams - 1);
    await sleep(100);
    assert.equal(held.length - before, LIMITS.maxConcurrentStreams, 'the stream over the limit was not dispatched');
  } finally {
    c.close();
  }
});

test('a PING flood from a client that reads nothing is cut off (nghttp2: at most 1000 queued ACKs)', async () => {
  const c = await RawH2.connect(port);
  try {
    await sleep(50);
    c.socket.pause();
    const ping = Buffer.concat([Buffer.from([0, 0, 8, FRAME.PING, 0, 0, 0, 0, 0]), Buffer.alloc(8)]);
    const burst = Buffer.concat(Array.from({ length: 1000 }, () => ping));
    // Up to 400,000 PINGs, each asking for an ACK that the client does not read.
    for (let i = 0; i < 400 && !c.socket.destroyed; i++) {
      c.socket.write(burst);
      await sleep(2);
    }
    c.socket.resume();
    for (let i = 0; i < 250 && !c.closed; i++) await sleep(20);
    assert.ok(c.closed, 'the connection survived the PING flood');
  } finally {
    c.close();
  }
});

test('a SETTINGS flood gets GOAWAY(ENHANCE_YOUR_CALM) even from a client that reads every ACK (CVE-2019-9515)', async () => {
  const c = await RawH2.connect(port);
  try {
    await c.waitFor((f) => f.type === FRAME.SETTINGS && (f.flags & FLAG.ACK) === 1, 5000, 'SETTINGS ACK');
    const settings = Buffer.from([0, 0, 0, FRAME.SETTINGS, 0, 0, 0, 0, 0]);
    for (let i = 0; i < 20 && !c.closed; i++) {
      c.write(Buffer.concat(Array.from({ length: 10 }, () => settings)));
      await sleep(10);
    }
    const goaway = await c.waitFor((f) => f.type === FRAME.GOAWAY, 5000, 'GOAWAY');
    assert.equal(goaway.payload.readUInt32BE(4), H2_ERROR.ENHANCE_YOUR_CALM);
    const acks = c.frames.filter((f) => f.type === FRAME.SETTINGS && (f.flags & FLAG.ACK) === 1).length;
    assert.ok(acks <= 60, `${acks} SETTINGS acknowledged`);
  } finally {
    c.close();
  }
});

test('a connection whose client reads nothing is closed after its streams are reset and it went idle', async () => {
  const big = Buffer.alloc(64 * 1024, 0x62);
  const stuck = await startFrontend(
    (_req, res) => {
      const sink = res.respond(200, []);
      const pump = () => {
        while (sink.write(big));
        sink.onDrain(pump);
      };
      pump();
    },
    { writeTimeoutMs: 500, idleTimeoutMs: 500 },
  );
  const c = await RawH2.connect(stuck.port, { initialWindowSize: 0x7fffffff });
  try {
    await sleep(50);
    c.socket.pause();
    c.request(1, [[':method', 'GET'], [':scheme', 'https'], [':authority', 'a.test'], [':path', '/big']]);
    // writeTimeout resets the stream (0.5 s), idleTimeout sends GOAWAY (0.5 s), and 0.5 s later the socket
    // is destroyed although its buffers never drained.
    for (let i = 0; i < 250 && stuck.frontend.sessionCount() > 0; i++) await sleep(20);
    assert.equal(stuck.frontend.sessionCount(), 0, 'the session is still open');
  } finally {
    c.close();
    await stuck.close();
  }
});
