// The HTTP/2 frontend's FrontResponse, in-process with node's HTTP/2 client: interim responses, header
// blocks node refuses (502, never a throw), bodies dropped for HEAD/204/304, abort() as RST_STREAM, and
// onClientAbort on a client reset.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http2 from 'node:http2';
import type { FrontRequest, FrontResponse } from '../../src/shared/http-types.ts';
import { startFrontend } from '../support/h2-frontend-harness.ts';
import type { FrontendHarness } from '../support/h2-frontend-harness.ts';

type Handler = (req: FrontRequest, res: FrontResponse) => void;
const handlers = new Map<string, Handler>();
let h: FrontendHarness;
let session: http2.ClientHttp2Session;

before(async () => {
  h = await startFrontend((req, res) => handlers.get(req.path)!(req, res));
  session = http2.connect(`https://127.0.0.1:${h.port}`, { rejectUnauthorized: false });
  session.on('error', () => undefined);
});

after(async () => {
  session.destroy();
  await h.close();
});

interface Result {
  interim: number[];
  status?: number;
  headers?: http2.IncomingHttpHeaders;
  body: string;
  /** The response ended with END_STREAM. */
  ended: boolean;
  rstCode?: number;
}

function fetch(p: string, headers: http2.OutgoingHttpHeaders = {}, handler?: Handler): Promise<Result> {
  if (handler) handlers.set(p, handler);
  return new Promise((resolve) => {
    const out: Result = { interim: [], body: '', ended: false };
    const req = session.request({ ':path': p, ...headers });
    req.setEncoding('latin1');
    req.on('headers', (h) => out.interim.push(Number(h[':status'])));
    req.on('response', (h) => {
      out.status = Number(h[':status']);
      out.headers = h;
    });
    req.on('data', (c: string) => (out.body += c));
    req.on('end', () => (out.ended = true));
    req.on('error', () => undefined);
    req.on('close', () => {
      out.rstCode = req.rstCode;
      resolve(out);
    });
  });
}

test('inform(100) and inform(103, fields) send interim responses before the final one', async () => {
  const r = await fetch('/interim', {}, (_req, res) => {
    res.inform(100);
    res.inform(103, [['link', '</style.css>; rel=preload']]);
    res.respond(200, [['content-length', '2']]).end(Buffer.from('ok'));
  });
  assert.deepEqual(r.interim, [100, 103]);
  assert.equal(r.status, 200);
  assert.equal(r.body, 'ok');
});

test('a header block node refuses (a field name that is no token, a request pseudo-header, a 1xx final status) is answered 502, respond() does not throw', async () => {
  const bad: Array<[number, Array<[string, string]>]> = [
    [200, [['bad name', 'x']]],
    [200, [['x-ok', '1'], [':path', '/pseudo']]],
    [101, []],
  ];
  for (const [status, headers] of bad) {
    let threw: unknown;
    const r = await fetch(`/bad-${status}-${headers.length}`, {}, (_req, res) => {
      try {
        const sink = res.respond(status, headers);
        sink.write(Buffer.from('dropped'));
        sink.end();
      } catch (err) {
        threw = err;
      }
    });
    assert.equal(threw, undefined);
    assert.equal(r.status, 502, JSON.stringify(headers));
    assert.match(r.body, /^502 Bad Gateway/);
    assert.equal(r.headers?.['x-injected'], undefined);
  }
});

test('no body bytes for HEAD, 204 and 304 even when written', async () => {
  const writeBody: Handler = (req, res) => {
    const sink = res.respond(req.path === '/s204' ? 204 : req.path === '/s304' ? 304 : 200, [['content-length', '5']]);
    assert.equal(sink.write(Buffer.from('hello')), true);
    sink.end(Buffer.from('!'));
  };
  const head = await fetch('/head', { ':method': 'HEAD' }, writeBody);
  assert.equal(head.status, 200);
  assert.equal(head.body, '');
  assert.equal((await fetch('/s204', {}, writeBody)).body, '');
  assert.equal((await fetch('/s304', {}, writeBody)).body, '');
});

test('abort() mid-body resets the stream with INTERNAL_ERROR and no END_STREAM first: without content-length the client still sees the body cut off', async () => {
  const r = await fetch('/abort', {}, (_req, res) => {
    const sink = res.respond(200, [['content-type', 'text/plain']]);
    sink.write(Buffer.from('partial'));
    setTimeout(() => res.abort(), 50);
  });
  assert.equal(r.status, 200);
  assert.equal(r.body, 'partial');
  assert.equal(r.ended, false, 'the client saw END_STREAM: a cut-off body looked complete');
  assert.equal(r.rstCode, http2.constants.NGHTTP2_INTERNAL_ERROR);
});

test('onClientAbort fires when the client resets a stream before the response; later respond() calls do not throw', async () => {
  let res!: FrontResponse;
  const aborted = new Promise<void>((resolve) => {
    handlers.set('/client-reset', (_req, r) => {
      res = r;
      r.onClientAbort(resolve);
    });
  });
  const req = session.request({ ':path': '/client-reset' });
  req.on('error', () => undefined);
  while (!res) await new Promise((r) => setTimeout(r, 5));
  req.destroy();
  await aborted;
  assert.equal(res.finished, false);
  const sink = res.respond(200, []);
  assert.equal(sink.write(Buffer.from('x')), true);
  sink.end();
  let late = false;
  res.onClientAbort(() => (late = true));
  await new Promise((r) => setImmediate(r));
  assert.equal(late, true, 'a callback added after the abort runs too');
});
