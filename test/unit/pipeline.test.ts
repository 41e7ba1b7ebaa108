// The request pipeline's runner and its phases, in memory (no sockets): order, answering, the error
// boundary, response and body filters, and each phase's own rule.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { gunzipSync, brotliDecompressSync } from 'node:zlib';
import pino from 'pino';
import { validateConfig } from '../../src/config/load.ts';
import { Pipeline } from '../../src/pipeline/pipeline.ts';
import type { Phase } from '../../src/pipeline/phase.ts';
import { validatePhase } from '../../src/pipeline/phases/validate.ts';
import { redirectPhase } from '../../src/pipeline/phases/redirect.ts';
import { bodyLimitPhase } from '../../src/pipeline/phases/body-limit.ts';
import { altSvcPhase } from '../../src/pipeline/phases/alt-svc.ts';
import { compressionPhase } from '../../src/pipeline/phases/compression.ts';
import { websocketPhase } from '../../src/pipeline/phases/websocket.ts';
import type { WebSocketProxy } from '../../src/proxy/websocket.ts';
import { SharedState } from '../../src/shared/state.ts';
import { memoryExchange, header } from '../support/memory-exchange.ts';

const logger = pino({ level: 'silent' });

/** A terminal phase that answers like a backend would. */
function backend(status = 200, headers: Array<[string, string]> = [['content-type', 'text/plain']], body = 'hello'): Phase {
  return {
    name: 'backend',
    request(ex) {
      const sink = ex.respond(status, [...headers]);
      sink.end(Buffer.from(body));
      return Promise.resolve(true);
    },
  };
}

test('phases run in order; the first that answers stops the chain; done hooks run once after', async () => {
  const order: string[] = [];
  const mk = (name: string, answers = false): Phase => ({
    name,
    request(ex) {
      order.push(name);
      if (answers) ex.answer(204, '');
      return answers;
    },
    done() {
      order.push(`done:${name}`);
    },
  });
  const p = new Pipeline([mk('a'), mk('b', true), mk('c')], logger);
  const m = memoryExchange();
  p.handle(m.req, m.res);
  await m.done;
  assert.deepEqual(order, ['a', 'b', 'done:a', 'done:b', 'done:c']);
  assert.equal(m.recorded.status, 204);
});

test('a phase that throws or rejects answers 500 (never reaches the caller); after headers it aborts', async () => {
  for (const bad of [
    { name: 'throws', request: () => { throw new Error('boom'); } },
    { name: 'rejects', request: () => Promise.reject(new Error('boom')) },
  ] as Phase[]) {
    const m = memoryExchange();
    new Pipeline([bad], logger).handle(m.req, m.res);
    const r = await m.done;
    assert.equal(r.status, 500, bad.name);
  }
  const m = memoryExchange();
  const late: Phase = {
    name: 'late',
    request(ex) {
      ex.respond(200, []).write(Buffer.from('part'));
      throw new Error('after headers');
    },
  };
  new Pipeline([late], logger).handle(m.req, m.res);
  assert.equal((await m.done).aborted, true);
});

test('response filters see every answer in order; body filters wrap so bytes flow in phase order', async () => {
  const seen: string[] = [];
  const tag = (name: string): Phase => ({
    name,
    response(_ex, head) {
      head.headers.push(['x-filter', name]);
    },
    body(_ex, _head, sink) {
      return {
        write: (c) => sink.write(Buffer.concat([Buffer.from(`${name}(`), c, Buffer.from(')')])),
        end: (c) => {
          seen.push(name);
          sink.end(c === undefined ? undefined : Buffer.concat([Buffer.from(`${name}(`), c, Buffer.from(')')]));
        },
        onDrain: (cb) => sink.onDrain(cb),
      };
    },
  });
  const m = memoryExchange();
  new Pipeline([tag('first'), tag('second'), backend()], logger).handle(m.req, m.res);
  const r = await m.done;
  assert.deepEqual(r.headers.filter(([n]) => n === 'x-filter').map(([, v]) => v), ['first', 'second']);
  // "first" transforms the backend's bytes, then "second" sees first's output.
  assert.equal(r.body.toString(), 'second(first(hello))');
  assert.deepEqual(seen, ['first', 'second']);
});

test('validate: bad methods, targets and fields are refused with 4xx before any backend', async () => {
  const config = validateConfig({});
  const cases: Array<[Partial<Parameters<typeof memoryExchange>[0]>, number]> = [
    [{ method: 'G ET' }, 400],
    [{ method: 'CONNECT' }, 405],
    [{ method: 'TRACE' }, 405],
    [{ path: 'relative' }, 400],
    [{ path: '/a b' }, 400],
    [{ path: '/\u0001' }, 400],
    // Bytes outside ASCII must be percent-encoded (RFC 3986 §2); llhttp refuses them on HTTP/1.1.
    [{ protocol: 'HTTP/2', path: '/x\u00ff' }, 400],
    // Methods llhttp does not know (the HTTP/1.1 frontend's 400) are 501 on every protocol; case matters.
    [{ protocol: 'HTTP/2', method: 'Pfv' }, 501],
    [{ protocol: 'HTTP/3', method: 'get' }, 501],
    [{ protocol: 'HTTP/3', method: 'BREW' }, 501],
    [{ method: 'GET', path: '*' }, 400],
    [{ protocol: 'HTTP/3', headers: [['host', 'a'], ['x', 'a\nb']] }, 400],
    [{ protocol: 'HTTP/2', headers: [['host', 'a'], ['host', 'b']] }, 400],
    [{ protocol: 'HTTP/2', headers: [['host', 'a'], ['bad name', 'v']] }, 400],
    [{ protocol: 'HTTP/3', headers: [['host', 'a'], ['expect', 'magic']] }, 417],
  ];
  for (const [init, status] of cases) {
    const m = memoryExchange(init);
    new Pipeline([validatePhase(config), backend()], logger).handle(m.req, m.res);
    assert.equal((await m.done).status, status, JSON.stringify(init));
  }
  const star = memoryExchange({ method: 'OPTIONS', path: '*' });
  new Pipeline([validatePhase(config), backend(500)], logger).handle(star.req, star.res);
  const r = await star.done;
  assert.equal(r.status, 200);
  assert.match(header(r.headers, 'allow') ?? '', /GET/);
  for (const method of ['PROPFIND', 'PURGE', 'QUERY', 'PATCH']) {
    const known = memoryExchange({ protocol: 'HTTP/2', method });
    new Pipeline([validatePhase(config), backend()], logger).handle(known.req, known.res);
    assert.equal((await known.done).status, 200, `${method} is forwarded`);
  }
  const trace = memoryExchange({ method: 'TRACE' });
  new Pipeline([validatePhase(validateConfig({ server: { allowTrace: true } })), backend()], logger).handle(trace.req, trace.res);
  assert.equal((await trace.done).status, 200, 'TRACE passes when server.allowTrace');
});

test('redirect: only plain-HTTP requests, to the HTTPS port, target kept', async () => {
  const phase = redirectPhase(validateConfig({ server: { redirectHttpToHttps: true, httpsPort: 9443 } }))!;
  const m = memoryExchange({ scheme: 'http', authority: 'moodle.example.edu:8080', path: '/course/view.php?id=3' });
  new Pipeline([phase, backend()], logger).handle(m.req, m.res);
  const r = await m.done;
  assert.equal(r.status, 308);
  assert.equal(header(r.headers, 'location'), 'https://moodle.example.edu:9443/course/view.php?id=3');
  const s = memoryExchange({ scheme: 'https' });
  new Pipeline([phase, backend()], logger).handle(s.req, s.res);
  assert.equal((await s.done).status, 200);
  assert.equal(redirectPhase(validateConfig({})), undefined, 'no phase when off');
});

test('body-limit: a declared length over maxBodySize is 413 before the backend; no limit, no phase', async () => {
  const phase = bodyLimitPhase(validateConfig({ server: { maxBodySize: 10 } }))!;
  const m = memoryExchange({ method: 'POST', headers: [['host', 'a'], ['content-length', '11']], bodyText: '01234567890' });
  new Pipeline([phase, backend()], logger).handle(m.req, m.res);
  assert.equal((await m.done).status, 413);
  assert.equal(bodyLimitPhase(validateConfig({})), undefined);
});

test('alt-svc: advertised on TCP answers when QUIC is on, never on HTTP/3', async () => {
  const phase = altSvcPhase(validateConfig({ server: { httpsPort: 9443 } }))!;
  for (const [protocol, expected] of [['HTTP/1.1', 'h3=":9443"; ma=86400'], ['HTTP/3', undefined]] as const) {
    const m = memoryExchange({ protocol });
    new Pipeline([phase, backend()], logger).handle(m.req, m.res);
    assert.equal(header((await m.done).headers, 'alt-svc'), expected, protocol);
  }
  assert.equal(altSvcPhase(validateConfig({ quic: { enabled: false } })), undefined);
});

test('compression: br or gzip by Accept-Encoding, Vary added, length dropped; images and no-transform untouched', async () => {
  const config = validateConfig({ compression: { enabled: true, encodings: ['br', 'gzip'], minSize: 10 } });
  const phase = compressionPhase(config, new SharedState())!;
  const text = 'moodle '.repeat(500);
  const css: Array<[string, string]> = [['content-type', 'text/css'], ['content-length', String(text.length)], ['etag', '"v1"']];
  const run = async (accept: string | undefined, headers = css) => {
    const m = memoryExchange({ headers: accept === undefined ? [['host', 'a']] : [['host', 'a'], ['accept-encoding', accept]] });
    new Pipeline([phase, backend(200, headers, text)], logger).handle(m.req, m.res);
    return m.done;
  };
  const br = await run('gzip, br');
  assert.equal(header(br.headers, 'content-encoding'), 'br');
  assert.equal(header(br.headers, 'content-length'), undefined);
  assert.equal(header(br.headers, 'etag'), 'W/"v1"');
  assert.match(header(br.headers, 'vary') ?? '', /Accept-Encoding/);
  assert.equal(brotliDecompressSync(br.body).toString(), text);
  const gz = await run('gzip;q=1, br;q=0');
  assert.equal(header(gz.headers, 'content-encoding'), 'gzip');
  assert.equal(gunzipSync(gz.body).toString(), text);
  const none = await run(undefined);
  assert.equal(header(none.headers, 'content-encoding'), undefined);
  assert.equal(none.body.toString(), text);
  const png = await run('br', [['content-type', 'image/png']]);
  assert.equal(header(png.headers, 'content-encoding'), undefined);
  const nt = await run('br', [...css, ['cache-control', 'no-transform']]);
  assert.equal(header(nt.headers, 'content-encoding'), undefined);
  assert.equal(compressionPhase(validateConfig({}), new SharedState()), undefined, 'off by default');
});

test('websocket.enabled false: a WebSocket handshake is answered 501 by quiclb; other requests go on to the proxy', async () => {
  // Off, the proxy is never asked: an object that fails on any use stands in for it.
  const unused = new Proxy({}, { get: () => assert.fail('the WebSocket proxy must not be used when websocket.enabled is false') }) as WebSocketProxy;
  const phases = [websocketPhase(validateConfig({ websocket: { enabled: false } }), unused), backend()];
  const ws = memoryExchange({ upgrade: 'websocket', headers: [['host', 'moodle.example.edu'], ['sec-websocket-key', 'k'], ['sec-websocket-version', '13']] });
  new Pipeline(phases, logger).handle(ws.req, ws.res);
  const r = await ws.done;
  assert.equal(r.status, 501);
  assert.match(r.body.toString(), /websocket\.enabled/);
  const plain = memoryExchange();
  new Pipeline(phases, logger).handle(plain.req, plain.res);
  assert.equal((await plain.done).status, 200);
});

test('Exchange.upgrade: the 101 head passes the response filters (not the body filters) and reaches the frontend', async () => {
  const stamp: Phase = {
    name: 'stamp',
    response(_ex, head) {
      head.headers.push(['x-stamped', String(head.status)]);
    },
    body() {
      assert.fail('a tunnel has no body to filter');
    },
  };
  const accept: Phase = {
    name: 'accept',
    request(ex) {
      const stream = ex.upgrade([['sec-websocket-accept', 'a'], ['sec-websocket-protocol', 'chat']]);
      stream.end();
      return true;
    },
  };
  const m = memoryExchange({ upgrade: 'websocket' });
  new Pipeline([stamp, accept], logger).handle(m.req, m.res);
  const r = await m.done;
  assert.equal(r.status, 101);
  assert.deepEqual(r.headers, [['sec-websocket-accept', 'a'], ['sec-websocket-protocol', 'chat'], ['x-stamped', '101']]);
});
