// Malformed HTTP/2 requests (RFC 9113 §8.2, §8.3) never reach the pipeline. Most are refused by nghttp2
// (Node 24.21 bundles 1.70) before JavaScript sees them; this pins that down, so that a Node upgrade that
// loosens one fails here, and checks the few src/tcp/h2/request-head.ts handles itself. In-process
// frontend, hand-written client (test/support/h2-raw.ts).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { FrontRequest } from '../../src/shared/http-types.ts';
import { startFrontend } from '../support/h2-frontend-harness.ts';
import type { FrontendHarness } from '../support/h2-frontend-harness.ts';
import { RawH2, H2_ERROR } from '../support/h2-raw.ts';

let h: FrontendHarness;
let port: number;
const received: FrontRequest[] = [];

before(async () => {
  h = await startFrontend((req, res) => {
    received.push(req);
    res.respond(200, [['content-length', '0']]).end();
  });
  port = h.port;
});

after(() => h.close());

type Fields = Array<[string, string]>;
const req = (method = 'GET', p = '/', authority = 'a.test'): Fields => [[':method', method], [':scheme', 'https'], [':authority', authority], [':path', p]];

const REFUSED_BY_NGHTTP2: Record<string, Fields> = {
  'uppercase field name': [...req(), ['X-Upper', 'v']],
  connection: [...req(), ['connection', 'keep-alive']],
  'keep-alive': [...req(), ['keep-alive', '5']],
  'proxy-connection': [...req(), ['proxy-connection', 'x']],
  'transfer-encoding': [...req(), ['transfer-encoding', 'chunked']],
  upgrade: [...req(), ['upgrade', 'h2c']],
  'te other than trailers': [...req(), ['te', 'gzip']],
  'two host fields': [...req(), ['host', 'a.test'], ['host', 'a.test']],
  'no :authority and no host': [[':method', 'GET'], [':scheme', 'https'], [':path', '/']],
  'empty :authority': req('GET', '/', ''),
  ':authority with userinfo': req('GET', '/', 'user@a.test'),
  'no :scheme': [[':method', 'GET'], [':authority', 'a.test'], [':path', '/']],
  'empty :path': req('GET', ''),
  'relative :path': req('GET', 'index.php'),
  ':path with a space': req('GET', '/a b'),
  '* with GET': req('GET', '*'),
  'repeated :path': [...req(), [':path', '/x']],
  'unknown pseudo-header': [...req(), [':foo', 'v']],
  'pseudo-header after a field': [[':method', 'GET'], ['x-a', 'v'], [':scheme', 'https'], [':authority', 'a.test'], [':path', '/']],
  // Extended CONNECT is enabled here (websocket.enabled, the default): :protocol still only goes with CONNECT (RFC 8441 §4).
  ':protocol on GET': [[':method', 'GET'], [':protocol', 'websocket'], [':scheme', 'https'], [':authority', 'a.test'], [':path', '/']],
  'extended CONNECT without :path': [[':method', 'CONNECT'], [':protocol', 'websocket'], [':scheme', 'https'], [':authority', 'a.test']],
  'CONNECT with :path': [[':method', 'CONNECT'], [':authority', 'a.test:443'], [':path', '/']],
  'method with a space': req('G T'),
  'content-length with END_STREAM and no body': [...req(), ['content-length', '5']],
};

test('what nghttp2 refuses (RST_STREAM PROTOCOL_ERROR) never reaches the pipeline', async () => {
  const c = await RawH2.connect(port);
  try {
    const before = received.length;
    const names = Object.keys(REFUSED_BY_NGHTTP2);
    names.forEach((name, i) => c.request(1 + 2 * i, REFUSED_BY_NGHTTP2[name]));
    for (let i = 0; i < names.length; i++) {
      assert.deepEqual(await c.outcome(1 + 2 * i), { reset: H2_ERROR.PROTOCOL_ERROR }, names[i]);
    }
    assert.equal(received.length, before);
  } finally {
    c.close();
  }
});

test('fields with CR, LF, NUL or DEL in the value, surrounding whitespace, or a space or colon in the name are dropped before the pipeline', async () => {
  const c = await RawH2.connect(port);
  try {
    const before = received.length;
    const bad: Fields = [
      ['x-cr', 'a\rb'],
      ['x-lf', 'a\nb'],
      ['x-nul', 'a\0b'],
      ['x-del', 'a\x7fb'],
      ['x-lead', ' a'],
      ['x-trail', 'a '],
      ['x a', 'v'],
      ['x:a', 'v'],
    ];
    c.request(1, [...req('GET', '/dropped'), ...bad, ['x-kept', 'a b\tc']]);
    const r = await c.outcome(1);
    assert.ok('status' in r && r.status === 200, JSON.stringify(r));
    assert.equal(received.length, before + 1);
    assert.deepEqual(received[before].headers, [['host', 'a.test'], ['x-kept', 'a b\tc']]);
  } finally {
    c.close();
  }
});

test('with websocket.enabled false (extendedConnect off) :protocol is refused by nghttp2 as before', async () => {
  const off = await startFrontend((req, res) => {
    received.push(req);
    res.respond(200, [['content-length', '0']]).end();
  }, { extendedConnect: false });
  const c = await RawH2.connect(off.port);
  try {
    const before = received.length;
    c.request(1, [[':method', 'CONNECT'], [':protocol', 'websocket'], [':scheme', 'https'], [':authority', 'a.test'], [':path', '/']]);
    assert.deepEqual(await c.outcome(1), { reset: H2_ERROR.PROTOCOL_ERROR });
    assert.equal(received.length, before);
  } finally {
    c.close();
    await off.close();
  }
});

test('extended CONNECT: :protocol websocket reaches the pipeline as a GET WebSocket handshake without a body; other protocols 501', async () => {
  const c = await RawH2.connect(port);
  try {
    const before = received.length;
    c.request(1, [[':method', 'CONNECT'], [':protocol', 'connect-udp'], [':scheme', 'https'], [':authority', 'a.test'], [':path', '/']]);
    c.request(3, [[':method', 'CONNECT'], [':protocol', 'websocket'], [':scheme', 'https'], [':authority', 'a.test'], [':path', '/chat'], ['sec-websocket-version', '13']], false);
    const other = await c.outcome(1);
    assert.ok('status' in other && other.status === 501, JSON.stringify(other));
    const ws = await c.outcome(3);
    assert.ok('status' in ws && ws.status === 200, JSON.stringify(ws));
    assert.equal(received.length, before + 1);
    const req = received[before];
    assert.equal(req.method, 'GET');
    assert.equal(req.upgrade, 'websocket');
    assert.equal(req.path, '/chat');
    assert.equal(req.body, null);
    assert.deepEqual(req.headers, [['host', 'a.test'], ['sec-websocket-version', '13']]);
  } finally {
    c.close();
  }
});

test('left to the frontend: :authority/host mismatch 400, CONNECT 405, and a host-only request gets host as its authority', async () => {
  const c = await RawH2.connect(port);
  try {
    const before = received.length;
    c.request(1, [...req(), ['host', 'b.test']]);
    c.request(3, [[':method', 'CONNECT'], [':authority', 'a.test:443']]);
    c.request(5, [[':method', 'GET'], [':scheme', 'https'], [':path', '/h'], ['host', 'h.test']]);
    const mismatch = await c.outcome(1);
    const connect = await c.outcome(3);
    const hostOnly = await c.outcome(5);
    assert.ok('status' in mismatch && mismatch.status === 400);
    assert.ok('status' in connect && connect.status === 405);
    assert.ok('status' in hostOnly && hostOnly.status === 200);
    assert.equal(received.length, before + 1);
    assert.equal(received[before].authority, 'h.test');
    assert.deepEqual(received[before].headers, [['host', 'h.test']]);
    assert.equal(received[before].protocol, 'HTTP/2');
    assert.equal(received[before].scheme, 'https');
    assert.equal(received[before].body, null);
  } finally {
    c.close();
  }
});
