// The HTTP/3 request lifecycle as the pipeline sees it, on the real QUIC engine (QuicEndpoint in a shard
// thread behind the real UdpRouter) with a real client (our quiche-based HTTP/3 client): client resets and
// STOP_SENDING cancel the request at once, a flood of reset streams closes the connection with
// H3_EXCESSIVE_LOAD and leaves no per-stream state, read and write timeouts, the field-section size limit
// (431, QPACK bombs), request normalisation, and responses a handler gets wrong.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startQuicHarness, type QuicHarness } from '../support/quic-harness.ts';
import { H3Connection, H3ClientError, type H3Stream } from '../../bench/lib/h3-client.ts';
import { H3_EXCESSIVE_LOAD, H3_INTERNAL_ERROR, H3_REQUEST_CANCELLED } from '../../src/http3/errors.ts';
import { SETTINGS_MAX_FIELD_SECTION_SIZE } from '../../src/http3/settings.ts';
import { writePrefixedInt } from '../../src/http3/qpack/prefixed-int.ts';
import { encodeFieldSection } from '../../src/http3/qpack/encoder.ts';

const READ_TIMEOUT = 1500;
const WRITE_TIMEOUT = 1500;
const MAX_HEADER = 4096;

let h: QuicHarness;

before(async () => {
  h = await startQuicHarness({
    shards: 1,
    configure: (c) => {
      c.server.readTimeoutMs = READ_TIMEOUT;
      c.server.writeTimeoutMs = WRITE_TIMEOUT;
      c.server.maxHeaderSize = MAX_HEADER;
    },
  });
});

after(async () => {
  await h?.close();
});

const connect = (extra: { streamWindow?: number } = {}) => H3Connection.connect({ host: '127.0.0.1', port: h.port, ...extra });

type Ev = { event: string; tag: string | null; bytes?: number; message?: string };
const events = (tag: string): Ev[] => h.messages.filter((m) => m.msg?.type === 'test:event' && m.msg.tag === tag).map((m) => m.msg as Ev);

async function waitEvent(tag: string, event: string, timeoutMs = 5000): Promise<Ev> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const e = events(tag).find((x) => x.event === event);
    if (e) return e;
    if (Date.now() > deadline) throw new Error(`no '${event}' for ${tag} within ${timeoutMs} ms; saw ${JSON.stringify(events(tag))}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function counts(): Promise<Record<string, number>> {
  return (await h.ask(0, { type: 'test:counts' }, 'test:counts')).counts;
}

/** Waits until every per-stream map of the shard is empty again (streams end a moment after the client sees it). */
async function expectNoStreamState(timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let c: Record<string, number> = {};
  while (Date.now() < deadline) {
    c = await counts();
    if (Object.entries(c).every(([k, v]) => k === 'connections' || v === 0)) return;
    await sleep(50);
  }
  assert.fail(`per-stream state left: ${JSON.stringify(c)}`);
}

async function rejection(p: Promise<unknown>): Promise<H3ClientError> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof H3ClientError, String(err));
    return err;
  }
  assert.fail('expected the request to fail');
}

test('a client RESET_STREAM of an upload in flight fires onClientAbort at once and errors its body', async () => {
  const c = await connect();
  try {
    const s = await c.openStream({ method: 'POST', path: '/hold?tag=reset1', endStream: false, body: Buffer.alloc(10_000, 1) });
    await waitEvent('reset1', 'dispatched');
    const t0 = Date.now();
    s.reset();
    await waitEvent('reset1', 'abort', 1000);
    const err = await waitEvent('reset1', 'body-error', 1000);
    assert.ok(Date.now() - t0 < 1000);
    assert.equal(events('reset1').filter((e) => e.event === 'body-end').length, 0, 'a reset body never ends cleanly');
    assert.ok((err.bytes ?? 0) <= 10_000);
    assert.equal((await c.request({ path: '/after', timeoutMs: 3000 })).status, 200, 'the connection keeps working');
  } finally {
    c.close();
  }
  await expectNoStreamState();
});

test('STOP_SENDING on a GET waiting for its response fires onClientAbort promptly', async () => {
  const c = await connect();
  try {
    const s = await c.openStream({ path: '/hold?tag=stop1' });
    await waitEvent('stop1', 'dispatched');
    s.stopSending();
    await waitEvent('stop1', 'abort', 1000);
    assert.equal((await c.request({ path: '/after', timeoutMs: 3000 })).status, 200);
  } finally {
    c.close();
  }
  await expectNoStreamState();
});

test('a body paused by backpressure longer than the read timeout is not a read timeout', async () => {
  const c = await connect();
  try {
    const s = await c.openStream({ method: 'POST', path: `/slow-read?tag=slow1&ms=${READ_TIMEOUT * 2}`, endStream: false });
    // More than the body Readable buffers, so the stream is paused while the handler does not read.
    for (let i = 0; i < 8; i++) s.send(Buffer.alloc(32 * 1024, 2));
    s.end();
    const r = await s.response;
    assert.equal(r.status, 200);
    assert.equal(events('slow1').filter((e) => e.event === 'abort').length, 0);
    assert.equal((await waitEvent('slow1', 'body-end')).bytes, 8 * 32 * 1024);
  } finally {
    c.close();
  }
});

test('a reset while the body is paused by backpressure still errors the body at once', async () => {
  const c = await connect();
  try {
    const s = await c.openStream({ method: 'POST', path: `/slow-read?tag=slow2&ms=${READ_TIMEOUT * 3}`, endStream: false });
    for (let i = 0; i < 8; i++) s.send(Buffer.alloc(32 * 1024, 2));
    await waitEvent('slow2', 'dispatched');
    await sleep(100);
    s.reset();
    // The handler only reads after 3 read timeouts; the abort must not wait for it.
    await waitEvent('slow2', 'abort', 1000);
    // Its body had no 'error' listener yet: the abort must not crash the shard with an unhandled 'error'.
    await sleep(100);
    const other = await connect();
    assert.equal((await other.request({ path: '/after', timeoutMs: 3000 })).status, 200);
    other.close();
  } finally {
    c.close();
  }
});

test('closing the connection mid-upload errors the body (never a clean end)', async () => {
  const c = await connect();
  const s = await c.openStream({ method: 'POST', path: '/hold?tag=close1', endStream: false, body: Buffer.alloc(5000, 3) });
  await waitEvent('close1', 'dispatched');
  s.send(Buffer.alloc(5000, 3));
  await sleep(50);
  c.close();
  await waitEvent('close1', 'body-error', 2000);
  await waitEvent('close1', 'abort', 2000);
  assert.equal(events('close1').filter((e) => e.event === 'body-end').length, 0);
  await expectNoStreamState();
});

test('a header section that does not arrive within the read timeout: the stream is reset, no state left', async () => {
  const c = await connect();
  try {
    // Half of a HEADERS frame: type 0x01, a length of 40, and 5 of those 40 bytes.
    const s = await c.openStream({ path: '/', rawStart: Uint8Array.of(0x01, 40, 0, 0, 0xd1, 0xd7, 0x51), endStream: false });
    const t0 = Date.now();
    const err = await rejection(s.response);
    assert.equal(err.code, 'H3C_STREAM_RESET');
    const waited = Date.now() - t0;
    assert.ok(waited >= READ_TIMEOUT - 100 && waited < READ_TIMEOUT * 3, `reset after ${waited} ms`);
    assert.equal((await c.request({ path: '/after', timeoutMs: 3000 })).status, 200, 'only the stream is reset');
  } finally {
    c.close();
  }
  await expectNoStreamState();
});

test('a request body that pauses longer than the read timeout: reset, body errors, onClientAbort fires', async () => {
  const c = await connect();
  try {
    const s = await c.openStream({ method: 'POST', path: '/hold?tag=pause1', endStream: false, body: Buffer.alloc(1000, 4) });
    await waitEvent('pause1', 'dispatched');
    const t0 = Date.now();
    const e = await waitEvent('pause1', 'body-error', READ_TIMEOUT * 3);
    assert.ok(Date.now() - t0 >= READ_TIMEOUT - 200);
    assert.equal(e.bytes, 1000);
    await waitEvent('pause1', 'abort', 1000);
    assert.equal((await rejection(s.response)).code, 'H3C_STREAM_RESET');
  } finally {
    c.close();
  }
  await expectNoStreamState();
});

test('a response the client does not read for the write timeout is reset and its request cancelled', async () => {
  const c = await connect({ streamWindow: 64 * 1024 });
  try {
    const s = await c.openStream({ path: '/?bytes=4000000&tag=write1', paused: true });
    const t0 = Date.now();
    await waitEvent('write1', 'abort', WRITE_TIMEOUT * 4);
    const waited = Date.now() - t0;
    assert.ok(waited >= WRITE_TIMEOUT - 100, `aborted after ${waited} ms`);
    s.pauseReading(false);
    assert.equal((await rejection(s.response)).code, 'H3C_STREAM_RESET');
    assert.equal((await c.request({ path: '/after', timeoutMs: 3000 })).status, 200);
  } finally {
    c.close();
  }
  await expectNoStreamState();
});

test('a slow reader that keeps reading is not cut by the write timeout', async () => {
  const c = await connect({ streamWindow: 64 * 1024 });
  try {
    const s = await c.openStream({ path: '/?bytes=300000&tag=write2', paused: true, collectBody: true });
    // Two pauses, each shorter than the write timeout, with reading in between.
    await sleep(WRITE_TIMEOUT * 0.6);
    s.pauseReading(false);
    await sleep(20);
    s.pauseReading(true);
    await sleep(WRITE_TIMEOUT * 0.6);
    s.pauseReading(false);
    const r = await s.response;
    assert.equal(r.status, 200);
    assert.equal(r.bytes, 300000);
    assert.equal(events('write2').filter((e) => e.event === 'abort').length, 0);
  } finally {
    c.close();
  }
});

test('SETTINGS_MAX_FIELD_SECTION_SIZE is server.maxHeaderSize, and a larger section gets 431 without reaching the handler', async () => {
  const c = await connect();
  try {
    await c.request({ path: '/warmup', timeoutMs: 3000 });
    assert.equal(c.peerSettings?.get(SETTINGS_MAX_FIELD_SECTION_SIZE), MAX_HEADER);
    const big = await c.request({ path: '/hold?tag=big1', headers: [['x-big', 'b'.repeat(MAX_HEADER)]], timeoutMs: 3000 });
    assert.equal(big.status, 431);
    // Just under the limit passes (4 pseudo-headers and one field, 32 bytes of overhead each).
    const ok = await c.request({ path: '/echo-head', headers: [['x-big', 'b'.repeat(MAX_HEADER - 400)]], timeoutMs: 3000 });
    assert.equal(ok.status, 200);
    await sleep(100);
    assert.deepEqual(events('big1'), [], 'the oversized request never reached the handler');
  } finally {
    c.close();
  }
  await expectNoStreamState();
});

test('a QPACK bomb (a small section that decodes huge through the dynamic table) is cut at the limit', async () => {
  const c = await connect();
  try {
    await c.request({ path: '/warmup', timeoutMs: 3000 });
    // Client encoder stream (RFC 9204 §4.3): Set Dynamic Table Capacity 4096, then Insert With Literal Name
    // x-bomb = 3000 bytes (entry size 3038).
    const value = Buffer.alloc(3000, 0x62);
    const ins = Buffer.alloc(16 + 6 + value.length);
    let p = writePrefixedInt(ins, 0, 4096, 5, 0x20);
    p = writePrefixedInt(ins, p, 6, 5, 0x40);
    p += ins.write('x-bomb', p, 'latin1');
    p = writePrefixedInt(ins, p, value.length, 7, 0x00);
    p += value.copy(ins, p);
    c.sendUni(6, Buffer.concat([Uint8Array.of(0x02), ins.subarray(0, p)]));
    // One section: Required Insert Count 1 (encoded 2 for MaxEntries 128), Base 1, the usual pseudo-headers
    // as static literals, then 2000 one-byte references to dynamic entry 0: ~2 KB that decode to ~6 MB.
    const pseudo = encodeFieldSection([
      [':method', 'GET'],
      [':scheme', 'https'],
      [':authority', `127.0.0.1:${h.port}`],
      [':path', '/hold?tag=bomb1'],
    ]).subarray(2);
    const section = Buffer.concat([Uint8Array.of(0x02, 0x00), pseudo, Buffer.alloc(2000, 0x80)]);
    const r = await c.request({ path: '/', fieldSection: section, timeoutMs: 3000 });
    assert.equal(r.status, 431);
    assert.deepEqual(events('bomb1'), []);
    assert.equal((await c.request({ path: '/after', timeoutMs: 3000 })).status, 200, 'the connection survives');
  } finally {
    c.close();
  }
  await expectNoStreamState();
});

test('the request reaches the handler with one host field equal to its authority', async () => {
  const c = await connect();
  try {
    const json = async (opts: Parameters<H3Connection['request']>[0]) => JSON.parse((await c.request({ ...opts, collectBody: true, timeoutMs: 3000 })).body!.toString());
    const a = await json({ path: '/echo-head', authority: 'moodle.example:9443' });
    assert.equal(a.authority, 'moodle.example:9443');
    assert.deepEqual(a.headers.filter(([n]: [string]) => n === 'host'), [['host', 'moodle.example:9443']]);
    const b = await json({ path: '/echo-head', rawFields: [[':method', 'GET'], [':scheme', 'https'], [':path', '/echo-head'], ['host', 'only-host.example']] });
    assert.equal(b.authority, 'only-host.example');
    assert.deepEqual(b.headers.filter(([n]: [string]) => n === 'host'), [['host', 'only-host.example']]);
    const both = await json({ path: '/echo-head', authority: 'same.example', headers: [['host', 'same.example']] });
    assert.deepEqual(both.headers.filter(([n]: [string]) => n === 'host'), [['host', 'same.example']]);
  } finally {
    c.close();
  }
});

test('repeated single-value response fields are sent once on HTTP/3 (the first wins)', async () => {
  const c = await connect();
  try {
    const r = await c.request({ path: '/dup', timeoutMs: 3000 });
    const all = (n: string) => r.headers.filter(([k]) => k === n).map(([, v]) => v);
    assert.deepEqual(all('etag'), ['"first"']);
    assert.deepEqual(all('x-content-type-options'), ['nosniff']);
    assert.deepEqual(all('last-modified'), ['Mon, 01 Jan 2024 00:00:00 GMT']);
    assert.deepEqual(all('location'), ['/first']);
    assert.deepEqual(all('set-cookie'), ['a=1', 'b=2'], 'list fields stay repeated');
  } finally {
    c.close();
  }
});

test('HEAD responses carry no body bytes; inform() sends an interim 103 before the final response', async () => {
  const c = await connect();
  try {
    const head = await c.request({ method: 'HEAD', path: '/?bytes=5000', timeoutMs: 3000 });
    assert.equal(head.status, 200);
    assert.equal(head.headers.find(([n]) => n === 'content-length')?.[1], '5000');
    assert.equal(head.bytes, 0);
    const hints = await c.request({ path: '/early-hints', timeoutMs: 3000, collectBody: true });
    assert.deepEqual(hints.interim, [103]);
    assert.equal(hints.status, 200);
    assert.equal(hints.body?.toString(), 'after hints\n');
  } finally {
    c.close();
  }
});

test('respond() with an impossible status does not throw: the stream is reset instead', async () => {
  const c = await connect();
  try {
    const err = await rejection(c.request({ path: '/bad-status?tag=bad1', timeoutMs: 3000 }));
    assert.equal(err.code, 'H3C_STREAM_RESET');
    assert.equal(err.appCode, H3_INTERNAL_ERROR);
    await waitEvent('bad1', 'respond-returned', 1000);
    assert.equal((await c.request({ path: '/after', timeoutMs: 3000 })).status, 200);
  } finally {
    c.close();
  }
});

test('a handler that throws resets only its stream', async () => {
  const c = await connect();
  try {
    const err = await rejection(c.request({ path: '/throw', timeoutMs: 3000 }));
    assert.equal(err.appCode, H3_INTERNAL_ERROR);
    assert.equal((await c.request({ path: '/after', timeoutMs: 3000 })).status, 200);
  } finally {
    c.close();
  }
  await expectNoStreamState();
});

/**
 * Opens streams on one connection as fast as stream credit allows, each HEADERS (GET with FIN) followed
 * by RESET_STREAM and STOP_SENDING, half in the same flush and half a turn later (so that the server has
 * read the request first). Resolves with how many were reset before the connection closed, and how.
 */
async function rapidReset(c: H3Connection, limit: number, path: string): Promise<number> {
  let n = 0;
  while (n < limit && c.isOpen) {
    let s: H3Stream;
    try {
      s = await c.openStream({ path: `${path}${n}` });
    } catch {
      break;
    }
    if (n % 2 === 0) {
      s.reset(H3_REQUEST_CANCELLED);
      s.stopSending(H3_REQUEST_CANCELLED);
    } else {
      setImmediate(() => {
        s.reset(H3_REQUEST_CANCELLED);
        s.stopSending(H3_REQUEST_CANCELLED);
      });
    }
    n++;
    if (n % 16 === 0) await new Promise((r) => setImmediate(r));
  }
  for (let i = 0; i < 100 && c.isOpen; i++) await sleep(20);
  return n;
}

test('rapid reset: a connection that resets too many requests is closed with H3_EXCESSIVE_LOAD, no state left', { timeout: 60_000 }, async (t) => {
  const good = await connect();
  const attackers: H3Connection[] = [];
  try {
    const c = await connect();
    attackers.push(c);
    const sent = await rapidReset(c, 5000, '/hold?tag=rr-');
    assert.equal(c.isOpen, false, `still open after ${sent} resets`);
    assert.equal(c.closeError?.isApp, true);
    assert.equal(c.closeError?.errorCode, H3_EXCESSIVE_LOAD, JSON.stringify(c.closeError));
    assert.ok(sent >= 200 && sent < 1000, `closed after ${sent} resets`);
    const dispatched = h.messages.filter((m) => m.msg?.type === 'test:event' && String(m.msg.tag).startsWith('rr-') && m.msg.event === 'dispatched').length;
    t.diagnostic(`closed after ${sent} resets sent; ${dispatched} requests dispatched`);
    assert.ok(dispatched <= 210, `requests dispatched: ${dispatched}`);
    // A well-behaved connection from the same address is not affected.
    assert.equal((await good.request({ path: '/good', timeoutMs: 3000 })).status, 200);
  } finally {
    good.close();
    for (const a of attackers) a.close();
  }
  await expectNoStreamState();
});

test('rapid reset over many connections from one address: past the per-address budget a resetting connection is closed at once', { timeout: 90_000 }, async (t) => {
  // The per-connection limit alone lets a client reset 200 streams per connection and reconnect.
  const perConn: number[] = [];
  for (let i = 0; i < 12; i++) {
    const c = await connect();
    perConn.push(await rapidReset(c, 1000, `/hold?tag=ra${i}-`));
    assert.equal(c.closeError?.errorCode, H3_EXCESSIVE_LOAD, `connection ${i}: ${JSON.stringify(c.closeError)}`);
    c.close();
  }
  // Requests the server dispatched per connection: about half of the first connections' 200 (the other half
  // were reset before the server read them), and almost none once the address is over its budget.
  const dispatched = perConn.map((_, i) => h.messages.filter((m) => m.msg?.type === 'test:event' && String(m.msg.tag).startsWith(`ra${i}-`) && m.msg.event === 'dispatched').length);
  t.diagnostic(`dispatched per connection: ${dispatched.join(' ')} (resets sent: ${perConn.join(' ')})`);
  assert.ok(dispatched.slice(-3).every((n) => n <= 20), `dispatched per connection: ${dispatched.join(' ')} (resets sent: ${perConn.join(' ')})`);
  const good = await connect();
  try {
    assert.equal((await good.request({ path: '/good', timeoutMs: 3000 })).status, 200);
  } finally {
    good.close();
  }
  await expectNoStreamState();
});
