// The HTTP/2 frontend (src/tcp/h2) through the real quiclb, with real clients (node:http2, curl, h2load)
// and a hand-written one for what those refuse to send (test/support/h2-raw.ts), against a raw TCP
// backend that records the exact bytes it receives.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http2 from 'node:http2';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { startQuiclb } from '../support/quiclb-process.ts';
import type { QuiclbProcess } from '../support/quiclb-process.ts';
import { startRawBackend, OK_RESPONSE } from '../support/raw-answer-backend.ts';
import type { RawBackend, RawRequest } from '../support/raw-answer-backend.ts';
import { RawH2, FRAME, H2_ERROR, headerBlock, indexedField, indexedLiteralField } from '../support/h2-raw.ts';

const execFileP = promisify(execFile);

const DUPLICATES =
  'HTTP/1.1 200 OK\r\n' +
  'etag: "first"\r\netag: "second"\r\n' +
  'last-modified: Mon, 01 Jan 2024 00:00:00 GMT\r\nlast-modified: Tue, 02 Jan 2024 00:00:00 GMT\r\n' +
  'location: /first\r\nlocation: /second\r\n' +
  'x-content-type-options: nosniff\r\nx-content-type-options: nosniff\r\n' +
  'set-cookie: a=1\r\nset-cookie: b=2\r\n' +
  'content-type: text/plain\r\ncontent-length: 4\r\n\r\ndups';

let backend: RawBackend;
let lb: QuiclbProcess;

function answer(req: RawRequest): string | undefined {
  if (req.target.startsWith('/dups')) return DUPLICATES;
  if (req.target.startsWith('/upload')) return undefined; // recorded, never answered
  if (req.target.startsWith('/dies')) {
    // A chunked body cut off by the backend: no final chunk, and 200 ms later (the part sent has reached
    // the client by then) the connection closes.
    setTimeout(() => req.conn.socket.destroy(), 200);
    return 'HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ntransfer-encoding: chunked\r\n\r\n7\r\npartial\r\n';
  }
  if (req.target.startsWith('/slow')) {
    setTimeout(() => req.conn.socket.write('late'), 1000);
    return 'HTTP/1.1 200 OK\r\ncontent-length: 4\r\n\r\n';
  }
  return OK_RESPONSE;
}

before(async () => {
  backend = await startRawBackend(answer);
  lb = await startQuiclb({
    config: {
      loadBalancer: { backendServers: [{ id: 'raw', host: backend.host, port: backend.port }], sessionPersistence: false },
      healthCheck: { enabled: false },
      quic: { enabled: false },
    },
    workers: 1,
  });
});

after(async () => {
  await lb?.stop();
  await backend?.close();
});

/** A GET's pseudo-header fields. */
const get = (path = '/'): Array<[string, string]> => [[':method', 'GET'], [':scheme', 'https'], [':authority', 'a.test'], [':path', path]];
const BASE = get();

function h2get(session: http2.ClientHttp2Session, path: string, headers: http2.OutgoingHttpHeaders = {}) {
  return new Promise<{ status: number; headers: http2.IncomingHttpHeaders; body: string }>((resolve, reject) => {
    const req = session.request({ ':path': path, ...headers });
    let body = '';
    let head: http2.IncomingHttpHeaders = {};
    req.setEncoding('utf8');
    req.on('response', (h) => (head = h));
    req.on('data', (c: string) => (body += c));
    req.on('end', () => resolve({ status: Number(head[':status']), headers: head, body }));
    req.on('error', reject);
  });
}

function connect(): Promise<http2.ClientHttp2Session> {
  return new Promise((resolve, reject) => {
    const s = http2.connect(`https://127.0.0.1:${lb.httpsPort}`, { rejectUnauthorized: false });
    s.once('connect', () => resolve(s));
    s.once('error', reject);
  });
}

/** Requests the backend received since `from` (an index into backend.requests). */
const since = (from: number) => backend.requests.slice(from);

test('a backend repeating ETag, Last-Modified, Location and X-Content-Type-Options: the HTTP/2 client gets the first values and the shard stays up', async () => {
  const session = await connect();
  try {
    for (let i = 0; i < 2; i++) {
      const r = await h2get(session, `/dups?i=${i}`);
      assert.equal(r.status, 200);
      assert.equal(r.body, 'dups');
      assert.equal(r.headers.etag, '"first"');
      assert.equal(r.headers['last-modified'], 'Mon, 01 Jan 2024 00:00:00 GMT');
      assert.equal(r.headers.location, '/first');
      assert.equal(r.headers['x-content-type-options'], 'nosniff');
      assert.deepEqual(r.headers['set-cookie'], ['a=1', 'b=2'], 'fields that may repeat keep every value');
    }
    assert.equal((await h2get(session, '/after')).status, 200);
  } finally {
    session.close();
  }
  assert.ok(!lb.lines.some((l) => l.includes('shard exited') || l.includes('shard crashed')), lb.lines.filter((l) => l.includes('shard')).join('\n'));
});

test(':authority and host that differ are malformed: 400, nothing reaches the backend (RFC 9113 §8.3.1)', async () => {
  const c = await RawH2.connect(lb.httpsPort);
  try {
    const from = backend.requests.length;
    c.request(1, [...BASE, ['host', 'evil.test']]);
    const bad = await c.outcome(1);
    assert.ok('status' in bad && bad.status === 400, JSON.stringify(bad));
    // The same names, other case: one host, the :authority spelling.
    c.request(3, [[':method', 'GET'], [':scheme', 'https'], [':authority', 'Moodle.Test'], [':path', '/same'], ['host', 'moodle.test']]);
    // host alone stands in for :authority.
    c.request(5, [[':method', 'GET'], [':scheme', 'https'], [':path', '/hostonly'], ['host', 'h.test:9443']]);
    for (const id of [3, 5]) {
      const r = await c.outcome(id);
      assert.ok('status' in r && r.status === 200, `stream ${id}: ${JSON.stringify(r)}`);
    }
    const got = since(from);
    assert.deepEqual(got.map((r) => r.target).sort(), ['/hostonly', '/same']);
    const hosts = (r: RawRequest) => r.headers.filter(([n]) => n === 'host').map(([, v]) => v);
    assert.deepEqual(hosts(got.find((r) => r.target === '/same')!), ['Moodle.Test']);
    assert.deepEqual(hosts(got.find((r) => r.target === '/hostonly')!), ['h.test:9443']);
  } finally {
    c.close();
  }
});

test('CONNECT is answered 405 with Allow; what nghttp2 refuses (uppercase names, connection-specific fields, te: gzip) never reaches the backend', async () => {
  const c = await RawH2.connect(lb.httpsPort);
  try {
    const from = backend.requests.length;
    c.request(1, [[':method', 'CONNECT'], [':authority', 'db.internal:5432']]);
    const connect = await c.outcome(1);
    assert.ok('status' in connect && connect.status === 405, JSON.stringify(connect));
    assert.ok(connect.fields.some(([n, v]) => n === 'allow' && v.includes('GET')));
    const refused: Array<Array<[string, string]>> = [
      [...BASE, ['X-Upper', 'v']],
      [...BASE, ['connection', 'keep-alive']],
      [...BASE, ['transfer-encoding', 'chunked']],
      [...BASE, ['te', 'gzip']],
    ];
    refused.forEach((fields, i) => c.request(3 + 2 * i, fields));
    for (let i = 0; i < refused.length; i++) assert.deepEqual(await c.outcome(3 + 2 * i), { reset: H2_ERROR.PROTOCOL_ERROR });
    // CR, LF and NUL in a value: node/nghttp2 drop the field; the request goes on without it.
    c.request(11, [...get('/crlf'), ['x-smuggle', 'a\r\nx-injected: 1']]);
    const crlf = await c.outcome(11);
    assert.ok('status' in crlf && crlf.status === 200, JSON.stringify(crlf));
    const got = since(from);
    assert.deepEqual(got.map((r) => r.target), ['/crlf']);
    assert.ok(!got[0].head.includes('x-injected') && !got[0].head.includes('x-smuggle'), got[0].head);
  } finally {
    c.close();
  }
});

test('server.maxHeaderSize bounds the decoded header section: 431 before the client acknowledged SETTINGS (60 KB field, 4 KB HPACK bomb), ENHANCE_YOUR_CALM after', async () => {
  const from = backend.requests.length;
  // A client that never acknowledges our SETTINGS: nghttp2 never applies SETTINGS_MAX_HEADER_LIST_SIZE.
  const first = await RawH2.connect(lb.httpsPort, { ackSettings: false });
  try {
    first.request(1, [...BASE, ['x-big', 'x'.repeat(60_000)]]);
    // One 4000-byte field entered into the HPACK dynamic table, then referenced 100 times (1 byte each):
    // a 4.2 KB header block that decodes to 408 KB.
    const bomb = Buffer.concat([headerBlock(BASE), indexedLiteralField('x-bomb', 'y'.repeat(4000)), ...Array.from({ length: 100 }, () => indexedField(62))]);
    assert.ok(bomb.length < 4300);
    first.write(first.headersFrame(3, bomb, true));
    const many: Array<[string, string]> = [...BASE];
    for (let i = 0; i < 300; i++) many.push([`x-f${i}`, '1']);
    first.request(5, many);
    for (const id of [1, 3]) {
      const r = await first.outcome(id);
      assert.ok('status' in r && r.status === 431, `stream ${id}: ${JSON.stringify(r)}`);
    }
    // 300 fields: over node's maxHeaderListPairs (maxHeaderCount + 5), reset by node itself.
    assert.deepEqual(await first.outcome(5), { reset: H2_ERROR.ENHANCE_YOUR_CALM });
    // The connection is still good for a request of normal size.
    first.request(7, get('/small'));
    const ok = await first.outcome(7);
    assert.ok('status' in ok && ok.status === 200, JSON.stringify(ok));
  } finally {
    first.close();
  }
  const acked = await RawH2.connect(lb.httpsPort);
  try {
    await acked.waitFor((f) => f.type === FRAME.SETTINGS && (f.flags & 1) === 1, 5000, 'SETTINGS ACK');
    await new Promise((r) => setTimeout(r, 100)); // our ACK of the server's SETTINGS is processed
    acked.request(1, [...BASE, ['x-big', 'x'.repeat(17_000)]]);
    assert.deepEqual(await acked.outcome(1), { reset: H2_ERROR.ENHANCE_YOUR_CALM });
    acked.request(3, [...get('/fits'), ['x-mid', 'x'.repeat(15_000)]]);
    const fits = await acked.outcome(3);
    assert.ok('status' in fits && fits.status === 200, JSON.stringify(fits));
  } finally {
    acked.close();
  }
  assert.deepEqual(since(from).map((r) => r.target).sort(), ['/fits', '/small']);
  // curl sends its request before it has seen our SETTINGS: a too-large cookie gets a 431 it can show.
  const curl = await execFileP('curl', ['-sk', '--http2', '-o', '/dev/null', '-w', '%{http_code} %{http_version}', '-H', `cookie: big=${'c'.repeat(20_000)}`, `https://127.0.0.1:${lb.httpsPort}/cookie`]);
  assert.equal(curl.stdout, '431 2');
  assert.ok(!since(from).some((r) => r.target === '/cookie'));
});

/** Waits until the backend connection of the upload to `path` has received `min` bytes of body. */
async function uploadReachedBackend(path: string, min: number): Promise<RawRequest> {
  const deadline = Date.now() + 5000;
  for (;;) {
    const req = backend.requests.find((r) => r.target === path);
    if (req && req.conn.data.length - req.conn.data.indexOf('\r\n\r\n') - 4 >= min) return req;
    if (Date.now() > deadline) throw new Error(`the upload to ${path} did not reach the backend: ${req?.conn.text().slice(0, 300)}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** The bytes the backend got for an upload cut off by the client: never the last chunk, and the connection dropped. */
async function assertAbortedUpload(req: RawRequest): Promise<void> {
  await Promise.race([req.conn.closed, new Promise((_, reject) => setTimeout(() => reject(new Error('the backend connection stayed open')), 5000))]);
  const text = req.conn.text();
  assert.match(req.head, /transfer-encoding: chunked/i);
  assert.doesNotMatch(req.head, /content-length/i);
  assert.ok(!text.endsWith('\r\n0\r\n\r\n'), `the backend got a complete chunked body: ...${JSON.stringify(text.slice(-40))}`);
}

test('a POST without content-length cut off by RST_STREAM or by closing the connection reaches the backend aborted, not complete', async () => {
  const chunk = Buffer.alloc(32 * 1024, 0x61);
  // node:http2 client, RST_STREAM(CANCEL) mid-body. (Its stream.close(code) would send END_STREAM
  // first, completing the upload; destroy() sends RST_STREAM alone.)
  const s1 = await connect();
  const r1 = s1.request({ ':method': 'POST', ':path': '/upload-rst' });
  r1.on('error', () => undefined);
  r1.write(chunk);
  await assertAbortedUpload(await uploadReachedBackend('/upload-rst', 1).then((req) => (r1.destroy(), req)));
  s1.close();
  // The connection closes mid-body.
  const s2 = await connect();
  const r2 = s2.request({ ':method': 'POST', ':path': '/upload-close' });
  r2.on('error', () => undefined);
  r2.write(chunk);
  await assertAbortedUpload(await uploadReachedBackend('/upload-close', 1).then((req) => (s2.destroy(), req)));
  // RST_STREAM(NO_ERROR): node ends the request stream cleanly for this one; quiclb must not.
  const c = await RawH2.connect(lb.httpsPort);
  c.request(1, [[':method', 'POST'], [':scheme', 'https'], [':authority', 'a.test'], [':path', '/upload-rst0']], false);
  c.write(c.dataFrame(1, chunk.subarray(0, 16_000), false));
  const req = await uploadReachedBackend('/upload-rst0', 1);
  c.write(c.rstFrame(1, H2_ERROR.NO_ERROR));
  await assertAbortedUpload(req);
  c.close();
});

test('a backend that dies mid-body: the HTTP/2 client sees the stream reset, never a clean end of a cut-off body', async () => {
  const session = await connect();
  try {
    const got = await new Promise<{ body: string; ended: boolean; rstCode: number }>((resolve) => {
      const req = session.request({ ':path': '/dies' });
      let body = '';
      let ended = false;
      req.setEncoding('utf8');
      req.on('data', (c: string) => (body += c));
      req.on('end', () => (ended = true));
      req.on('error', () => undefined);
      req.on('close', () => resolve({ body, ended, rstCode: req.rstCode ?? -1 }));
    });
    assert.equal(got.ended, false, `the client saw END_STREAM after ${JSON.stringify(got.body)}: a cut-off body looked complete`);
    assert.equal(got.rstCode, http2.constants.NGHTTP2_INTERNAL_ERROR);
  } finally {
    session.close();
  }
});

test('real clients: h2load (200 requests, 10 streams per connection) and curl --http2 (GET, upload)', async () => {
  const h2load = await execFileP('h2load', ['-n', '200', '-c', '4', '-m', '10', `https://127.0.0.1:${lb.httpsPort}/h2load`], { timeout: 60_000 });
  assert.match(h2load.stdout, /requests: 200 total, 200 started, 200 done, 200 succeeded, 0 failed, 0 errored/);
  assert.match(h2load.stdout, /status codes: 200 2xx/);
  assert.match(h2load.stdout, /Application protocol: h2/);
  const plain = await execFileP('curl', ['-sk', '--http2', '-w', ' %{http_code} %{http_version}', `https://127.0.0.1:${lb.httpsPort}/curl`]);
  assert.equal(plain.stdout, 'ok 200 2');
  const from = backend.requests.length;
  const post = await execFileP('curl', ['-sk', '--http2', '-w', ' %{http_code}', '--data-binary', 'x'.repeat(5000), `https://127.0.0.1:${lb.httpsPort}/post`]);
  assert.equal(post.stdout, 'ok 200');
  const got = since(from).find((r) => r.target === '/post')!;
  assert.match(got.head, /content-length: 5000/i);
  assert.ok(got.conn.text().includes('x'.repeat(5000)));
});

test('SIGTERM: GOAWAY(NO_ERROR) on the HTTP/2 connection, its in-flight request finishes, quiclb exits 0 (runs last: it stops quiclb)', async () => {
  const c = await RawH2.connect(lb.httpsPort);
  try {
    c.request(1, get('/slow-drain'));
    await c.waitFor((f) => f.stream === 1 && f.type === FRAME.HEADERS, 5000, 'response headers');
    const exited = lb.stop('SIGTERM');
    const goaway = await c.waitFor((f) => f.type === FRAME.GOAWAY, 5000, 'GOAWAY');
    assert.equal(goaway.payload.readUInt32BE(4), H2_ERROR.NO_ERROR);
    await c.waitFor((f) => f.stream === 1 && f.type === FRAME.DATA && (f.flags & 1) === 1, 5000, 'the end of the in-flight response');
    assert.equal(c.body(1).toString(), 'late');
    assert.equal(await exited, 0);
  } finally {
    c.close();
  }
});
