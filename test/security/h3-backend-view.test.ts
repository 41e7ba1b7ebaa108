// HTTP/3 through the real quiclb process, seen from a raw TCP backend that records every byte it receives:
// malformed requests never reach it (and never cost it a passive-health failure), an upload the client
// abandons arrives as an aborted request (never a complete one with a truncated body), read and write
// timeouts cancel the backend request, a rapid-reset flood reaches the backend only as a trickle while a
// well-behaved client keeps being served, and repeated single-value response fields are sent once.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { startQuiclb, type QuiclbProcess } from '../support/quiclb-process.ts';
import { startRecordingBackend, type RecordingBackend, type RecordedRequest } from '../support/recording-backend.ts';
import { getJson } from '../support/http-client.ts';
import { H3Connection, H3ClientError, type H3Stream } from '../../bench/lib/h3-client.ts';
import { H3_EXCESSIVE_LOAD, H3_MESSAGE_ERROR, H3_REQUEST_CANCELLED } from '../../src/http3/errors.ts';

let backend: RecordingBackend;
let lb: QuiclbProcess;

const READ_TIMEOUT = 1000;
const WRITE_TIMEOUT = 1000;

before(async () => {
  backend = await startRecordingBackend();
  lb = await startQuiclb({
    config: {
      server: { readTimeout: READ_TIMEOUT, writeTimeout: WRITE_TIMEOUT },
      loadBalancer: { backendServers: [{ id: 'rec', host: '127.0.0.1', port: backend.port }], retryIdempotent: false },
      // No active checks: every request the backend sees came from a client.
      healthCheck: { enabled: false, passiveFailureThreshold: 3 },
      logging: { accessLog: true },
    },
    workers: 1,
  });
});

after(async () => {
  await lb?.stop();
  await backend?.close();
});

const connect = (extra: { streamWindow?: number } = {}) => H3Connection.connect({ host: '127.0.0.1', port: lb.httpsPort, ...extra });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const seen = (pred: (r: RecordedRequest) => boolean) => backend.requests().filter(pred);
const backendStats = async () => (await getJson(`http://127.0.0.1:${lb.httpPort}/stats`)).body.backends[0];

async function rejection(p: Promise<unknown>): Promise<H3ClientError> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof H3ClientError, String(err));
    return err;
  }
  assert.fail('expected the request to fail');
}

test('malformed HTTP/3 requests are stream errors that never reach the backend, never a 502 or a health failure', { timeout: 60_000 }, async (t) => {
  const c = await connect();
  const authority = `127.0.0.1:${lb.httpsPort}`;
  const req = (path: string, extra: Array<[string, string]> = [], pseudo: Array<[string, string]> = []): Array<[string, string]> => [
    [':method', 'GET'],
    [':scheme', 'https'],
    [':authority', authority],
    [':path', path],
    ...pseudo,
    ...extra,
  ];
  const malformed: Array<[string, Array<[string, string]>]> = [
    ['uppercase field name', req('/m1', [['X-Upper', 'a']])],
    ['invalid character in a field name', req('/m2', [['x(bad)', 'a']])],
    ['CR in a value', req('/m3', [['x-a', 'a\rb']])],
    ['LF in a value', req('/m4', [['x-a', 'a\nb']])],
    ['NUL in a value', req('/m5', [['x-a', 'a\u0000b']])],
    ['leading space in a value', req('/m6', [['x-a', ' a']])],
    ['trailing tab in a value', req('/m7', [['x-a', 'a\t']])],
    ['connection', req('/m8', [['connection', 'close']])],
    ['keep-alive', req('/m9', [['keep-alive', '5']])],
    ['proxy-connection', req('/m10', [['proxy-connection', 'keep-alive']])],
    ['transfer-encoding', req('/m11', [['transfer-encoding', 'chunked']])],
    ['upgrade', req('/m12', [['upgrade', 'websocket']])],
    ['te other than trailers', req('/m13', [['te', 'gzip']])],
    ['space in :path', req('/m14 HTTP/1.1\r\nX: y')],
    ['space in :path (plain)', req('/m15 x')],
    ['control character in :path', req('/m16\u0001')],
    ['DEL in :path', req('/m17\u007f')],
    [':path not starting with /', req('m18')],
    ['* :path for GET', req('*')],
    ['missing :method', req('/m20').filter(([n]) => n !== ':method')],
    ['missing :path', req('/m21').filter(([n]) => n !== ':path')],
    ['missing :scheme', req('/m22').filter(([n]) => n !== ':scheme')],
    ['duplicate :path', req('/m23', [], [[':path', '/m23b']])],
    ['duplicate :method', req('/m24', [], [[':method', 'POST']])],
    [':authority and host differ', req('/m25', [['host', 'other.example']])],
    ['userinfo in :authority', [[':method', 'GET'], [':scheme', 'https'], [':authority', `user@${authority}`], [':path', '/m26']]],
    ['space in :authority', [[':method', 'GET'], [':scheme', 'https'], [':authority', 'a b.example'], [':path', '/m27']]],
    ['no authority at all', [[':method', 'GET'], [':scheme', 'https'], [':path', '/m28']]],
    ['unknown :scheme', [[':method', 'GET'], [':scheme', 'ftp'], [':authority', authority], [':path', '/m29']]],
  ];
  try {
    for (const [why, fields] of malformed) {
      const t0 = Date.now();
      const err = await rejection(c.request({ path: '/', rawFields: fields, timeoutMs: 3000 }));
      t.diagnostic(`${why}: ${err.message} in ${Date.now() - t0} ms`);
      assert.equal(err.code, 'H3C_STREAM_RESET', why);
      assert.equal(err.appCode, H3_MESSAGE_ERROR, `${why}: ${err.message}`);
    }
    assert.equal((await c.request({ path: '/valid', timeoutMs: 3000 })).status, 200, 'the connection still serves requests');
  } finally {
    c.close();
  }
  assert.deepEqual(backend.requests().filter((r) => /^\/m\d/.test(r.path) || r.path === '*' || r.path.startsWith('m')), []);
  const s = await backendStats();
  assert.equal(s.healthy, true);
  assert.equal(s.errors, 0);
  const statuses = lb.logs().filter((l) => l.msg === 'request').map((l) => l.status);
  assert.ok(!statuses.includes(502), `access log statuses: ${statuses.join(' ')}`);
});

async function uploadThenAbort(how: 'reset' | 'close', tag: string): Promise<RecordedRequest> {
  const errorsBefore = (await backendStats()).errors;
  const c = await connect();
  let s: H3Stream;
  try {
    s = await c.openStream({ method: 'POST', path: `/upload-${tag}`, endStream: false, body: Buffer.alloc(16 * 1024, 7) });
    await backend.waitFor(() => seen((r) => r.path === `/upload-${tag}` && r.body.length >= 16 * 1024).length === 1, 5000, `the first 16 KiB of ${tag}`);
    s.send(Buffer.alloc(8 * 1024, 8));
    await sleep(50);
    if (how === 'reset') s.reset(H3_REQUEST_CANCELLED);
    else c.close();
  } finally {
    if (how === 'reset') setTimeout(() => c.close(), 3000);
  }
  const conn = backend.connections.find((k) => k.requests.some((r) => r.path === `/upload-${tag}`))!;
  await backend.waitFor(() => conn.ended !== null, 5000, `the backend connection of ${tag} to end`);
  // A client that gives up is not the backend failing.
  await sleep(100);
  const st = await backendStats();
  assert.equal(st.healthy, true);
  assert.equal(st.errors, errorsBefore, 'no backend error counted');
  return conn.requests.find((r) => r.path === `/upload-${tag}`)!;
}

test('an upload without content-length that the client resets reaches the backend as an aborted request', async () => {
  const r = await uploadThenAbort('reset', 'r1');
  assert.equal(r.chunked, true);
  assert.equal(r.complete, false, 'no final chunk: the backend must not see a complete request');
  assert.ok(r.body.length >= 16 * 1024 && r.body.length <= 24 * 1024);
});

test('an upload without content-length whose connection closes reaches the backend as an aborted request', async () => {
  const r = await uploadThenAbort('close', 'c1');
  assert.equal(r.chunked, true);
  assert.equal(r.complete, false);
});

test('server.readTimeout: an upload that pauses longer is cancelled at the backend', async () => {
  const c = await connect();
  try {
    const s = await c.openStream({ method: 'POST', path: '/pause-1', endStream: false, body: Buffer.alloc(4096, 1) });
    await backend.waitFor(() => seen((r) => r.path === '/pause-1' && r.body.length === 4096).length === 1, 5000, 'the first body bytes');
    const conn = backend.connections.find((k) => k.requests.some((r) => r.path === '/pause-1'))!;
    const t0 = Date.now();
    await backend.waitFor(() => conn.ended !== null, READ_TIMEOUT * 5, 'the backend request to be cancelled');
    assert.ok(Date.now() - t0 >= READ_TIMEOUT - 300);
    assert.equal(conn.requests.at(-1)!.complete, false);
    assert.equal((await rejection(s.response)).code, 'H3C_STREAM_RESET');
  } finally {
    c.close();
  }
});

test('server.writeTimeout: a response the client stops reading is reset and the backend request cancelled', async () => {
  const c = await connect({ streamWindow: 64 * 1024 });
  try {
    const s = await c.openStream({ path: '/big-1?bytes=16000000', paused: true });
    await backend.waitFor(() => seen((r) => r.path.startsWith('/big-1')).length === 1, 5000, 'the request');
    const conn = backend.connections.find((k) => k.requests.some((r) => r.path.startsWith('/big-1')))!;
    await backend.waitFor(() => conn.ended !== null, WRITE_TIMEOUT * 6, 'the backend request to be cancelled');
    s.pauseReading(false);
    assert.equal((await rejection(s.response)).code, 'H3C_STREAM_RESET');
  } finally {
    c.close();
  }
  const st = await backendStats();
  assert.equal(st.healthy, true, 'a client that stops reading is not the backend failing');
});

test('repeated single-value fields from the backend reach an HTTP/3 client once', async () => {
  const c = await connect();
  try {
    const q = ['ETag: "one"', 'ETag: "two"', 'X-Content-Type-Options: nosniff', 'X-Content-Type-Options: nosniff', 'Location: /a', 'Location: /b']
      .map((h) => `hdr=${encodeURIComponent(h)}`)
      .join('&');
    const r = await c.request({ path: `/dup?${q}`, timeoutMs: 3000 });
    assert.equal(r.status, 200);
    const all = (n: string) => r.headers.filter(([k]) => k === n).map(([, v]) => v);
    assert.deepEqual(all('etag'), ['"one"']);
    assert.deepEqual(all('x-content-type-options'), ['nosniff']);
    assert.deepEqual(all('location'), ['/a']);
  } finally {
    c.close();
  }
});

function rssKiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) : 0;
}

test('rapid reset: thousands of opened-and-reset streams reach the backend as a trickle; memory stays bounded; others are served', { timeout: 120_000 }, async (t) => {
  const pid = lb.child.pid!;
  const before = backend.requests().length;
  // Warm up (JIT, pools) before taking the baseline.
  const warm = await connect();
  for (let i = 0; i < 50; i++) await warm.request({ path: '/warm?delay=1', timeoutMs: 3000 });
  warm.close();
  const rssBefore = rssKiB(pid);

  // A well-behaved client on its own connection, all along.
  const good = await connect();
  const latencies: number[] = [];
  let stop = false;
  const goodLoop = (async () => {
    while (!stop) {
      const t0 = performance.now();
      const r = await good.request({ path: '/good?delay=5', timeoutMs: 10_000 });
      assert.equal(r.status, 200);
      latencies.push(performance.now() - t0);
      await sleep(20);
    }
  })();

  let resets = 0;
  let connections = 0;
  let excessive = 0;
  const deadline = Date.now() + 8000;
  while (Date.now() < deadline && resets < 20_000) {
    const c = await connect();
    connections++;
    while (c.isOpen && Date.now() < deadline) {
      let s: H3Stream;
      try {
        // The backend answers after 200 ms, so every dispatched request is still in flight when reset.
        s = await c.openStream({ path: `/rr?delay=200&n=${resets}` });
      } catch {
        break;
      }
      if (resets % 2 === 0) {
        s.reset();
        s.stopSending();
      } else {
        setImmediate(() => {
          s.reset();
          s.stopSending();
        });
      }
      resets++;
      if (resets % 16 === 0) await new Promise((r) => setImmediate(r));
    }
    for (let i = 0; i < 50 && c.isOpen; i++) await sleep(10);
    if (c.closeError?.errorCode === H3_EXCESSIVE_LOAD) excessive++;
    c.close();
  }
  stop = true;
  await goodLoop;
  good.close();
  const rssAfter = rssKiB(pid);
  const rr = backend.requests().slice(before).filter((r) => r.path.startsWith('/rr')).length;
  t.diagnostic(
    `attacker: ${resets} streams reset over ${connections} connections (${excessive} closed with H3_EXCESSIVE_LOAD); ` +
      `backend saw ${rr}; good client: ${latencies.length} requests, slowest ${Math.round(Math.max(...latencies))} ms; RSS ${rssBefore} -> ${rssAfter} KiB`,
  );

  assert.ok(resets >= 2000, `the attacker reset ${resets} streams`);
  assert.ok(excessive >= 1 && excessive >= connections - 1, `${excessive} of ${connections} attacker connections closed with H3_EXCESSIVE_LOAD`);
  // 200 per connection until the address is over its budget (800), then about one per connection.
  assert.ok(rr <= 800 + 4 * connections && rr < resets / 2, `backend saw ${rr} of ${resets} reset requests over ${connections} connections`);
  assert.ok(latencies.length >= 20, `the good client completed ${latencies.length} requests`);
  assert.ok(Math.max(...latencies) < 2500, `good client's slowest request: ${Math.round(Math.max(...latencies))} ms`);
  assert.ok(rssAfter - rssBefore < 64 * 1024, `RSS grew from ${rssBefore} to ${rssAfter} KiB`);
});
