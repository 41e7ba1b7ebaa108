// The FastCGI client against a raw TCP server that records the bytes it gets and answers what each test
// scripts: the exact records sent, and php-fpm misbehaviour that a real php-fpm does not produce on demand.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server, type Socket } from 'node:net';
import { Readable } from 'node:stream';
import { FastCgiPool, type FastCgiPoolOptions } from '../../src/fastcgi/pool.ts';
import {
  FCGI_END_REQUEST,
  FCGI_KEEP_CONN,
  FCGI_OVERLOADED,
  FCGI_PARAMS,
  FCGI_STDIN,
  FCGI_STDOUT,
  RecordParser,
  decodeNameValuePairs,
  recordHeader,
  type RecordEvent,
} from '../../src/fastcgi/records.ts';
import { exchange } from '../support/fastcgi-handler.ts';

interface Received {
  begin?: { requestId: number; role: number; flags: number };
  params: Array<[string, string]>;
  stdin: Buffer;
  stdinEnded: boolean;
}

type Script = (sock: Socket, req: Received, index: number) => void;

const servers: Server[] = [];
const pools: FastCgiPool[] = [];
after(async () => {
  await Promise.all(pools.map((p) => p.destroy()));
  for (const s of servers) s.close();
});

function stdout(text: string | Buffer): Buffer {
  const b = typeof text === 'string' ? Buffer.from(text, 'latin1') : text;
  return Buffer.concat([recordHeader(FCGI_STDOUT, 1, b.length), b]);
}

/** The empty STDOUT record, then END_REQUEST; a rejection (protocolStatus > 0) has no STDOUT at all. */
function end(protocolStatus = 0): Buffer {
  const body = Buffer.alloc(8);
  body[4] = protocolStatus;
  const endRequest = Buffer.concat([recordHeader(FCGI_END_REQUEST, 1, 8), body]);
  return protocolStatus === 0 ? Buffer.concat([recordHeader(FCGI_STDOUT, 1, 0), endRequest]) : endRequest;
}

/** A fake php-fpm: parses each request fully (until the empty STDIN), then runs `script` (one per request, in order). */
async function fakeFpm(scripts: Script[]): Promise<{ pool(opts?: Partial<FastCgiPoolOptions>): FastCgiPool; received: Received[]; connections: () => number }> {
  const received: Received[] = [];
  let connections = 0;
  let n = 0;
  const server = createServer((sock) => {
    connections++;
    let cur: Received = { params: [], stdin: Buffer.alloc(0), stdinEnded: false };
    let paramBytes = Buffer.alloc(0);
    const parser = new RecordParser('server', (e: RecordEvent) => {
      if (e.kind === 'begin') cur.begin = { requestId: e.requestId, role: e.role, flags: e.flags };
      else if (e.kind === 'stream' && e.type === FCGI_PARAMS) {
        if (e.data.length === 0) cur.params = decodeNameValuePairs(paramBytes);
        else paramBytes = Buffer.concat([paramBytes, e.data]);
      } else if (e.kind === 'stream' && e.type === FCGI_STDIN) {
        if (e.data.length > 0) cur.stdin = Buffer.concat([cur.stdin, e.data]);
        else {
          cur.stdinEnded = true;
          received.push(cur);
          const req = cur;
          cur = { params: [], stdin: Buffer.alloc(0), stdinEnded: false };
          paramBytes = Buffer.alloc(0);
          const script = scripts[n] ?? scripts[scripts.length - 1];
          script(sock, req, n++);
        }
      }
    });
    sock.on('data', (d) => {
      try {
        parser.push(d);
      } catch {
        sock.destroy();
      }
    });
    sock.on('error', () => {});
  });
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  return {
    received,
    connections: () => connections,
    pool: (opts = {}) => {
      const p = new FastCgiPool({ target: { host: '127.0.0.1', port }, ...opts });
      pools.push(p);
      return p;
    },
  };
}

const ok: Script = (sock) => sock.write(Buffer.concat([stdout('Content-Type: text/plain\r\n\r\nok'), end()]));

test('the request on the wire: BEGIN_REQUEST role RESPONDER with FCGI_KEEP_CONN, PARAMS decoded back, CONTENT_LENGTH from contentLength, STDIN', async () => {
  const fpm = await fakeFpm([ok]);
  const body = Buffer.from('x'.repeat(70_000));
  const o = await exchange(fpm.pool(), {
    params: [['SCRIPT_FILENAME', '/srv/moodle/index.php'], ['CONTENT_LENGTH', '999'], ['HTTP_LONG', 'v'.repeat(300)]],
    body: Readable.from([body.subarray(0, 1000), body.subarray(1000)]),
    contentLength: body.length,
  });
  assert.equal(o.status, 200);
  assert.equal(o.body.toString(), 'ok');
  const r = fpm.received[0];
  assert.deepEqual(r.begin, { requestId: 1, role: 1, flags: FCGI_KEEP_CONN });
  assert.deepEqual(r.params, [['SCRIPT_FILENAME', '/srv/moodle/index.php'], ['HTTP_LONG', 'v'.repeat(300)], ['CONTENT_LENGTH', '70000']]);
  assert.deepEqual(r.stdin, body);
  assert.ok(r.stdinEnded);
});

test('keepAlive false sends no FCGI_KEEP_CONN and does not keep the connection', async () => {
  const fpm = await fakeFpm([ok]);
  const p = fpm.pool({ keepAlive: false });
  await exchange(p, { params: [], body: null, contentLength: 0 });
  assert.equal(fpm.received[0].begin?.flags, 0);
  assert.equal(p.stats.connections, 0);
});

test('a malformed record stream fails with QUICLB_FCGI_PROTOCOL; a bad CGI header with QUICLB_FCGI_BAD_HEADER', async () => {
  const fpm = await fakeFpm([
    (sock) => sock.write(Buffer.from([9, 6, 0, 1, 0, 0, 0, 0])),
    (sock) => sock.write(Buffer.concat([stdout('no colon\r\n\r\n'), end()])),
    (sock) => sock.write(end()),
    (sock) => sock.write(Buffer.concat([stdout('Status: 200\r\n\r\nhi'), end(), recordHeader(FCGI_STDOUT, 2, 0)])),
  ]);
  const p = fpm.pool();
  const a = await exchange(p, { params: [], body: null, contentLength: 0 });
  assert.equal(a.error?.code, 'QUICLB_FCGI_PROTOCOL');
  const b = await exchange(p, { params: [], body: null, contentLength: 0 });
  assert.equal(b.error?.code, 'QUICLB_FCGI_BAD_HEADER');
  const c = await exchange(p, { params: [], body: null, contentLength: 0 });
  assert.equal(c.error?.code, 'QUICLB_FCGI_BAD_HEADER', 'END_REQUEST without any header block');
  // Bytes after END_REQUEST: the response was complete, but the connection is not trusted again.
  const d = await exchange(p, { params: [], body: null, contentLength: 0 });
  assert.equal(d.status, 200);
  assert.deepEqual(d.events, ['start', 'response', 'data', 'end']);
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(p.stats.connections, 0);
});

test('END_REQUEST with OVERLOADED is QUICLB_FCGI_REJECTED', async () => {
  const fpm = await fakeFpm([(sock) => sock.write(end(FCGI_OVERLOADED))]);
  const o = await exchange(fpm.pool(), { params: [], body: null, contentLength: 0 });
  assert.equal(o.error?.code, 'QUICLB_FCGI_REJECTED');
});

test('a stale kept connection is retried once for an idempotent body-less request; a request with a body never reuses one', async () => {
  // Request 1 is answered and kept; request 2 arrives on it and php-fpm closes without answering (a child that
  // exited); the retry on a new connection is answered.
  const fpm = await fakeFpm([ok, (sock) => sock.destroy(), ok, ok]);
  const p = fpm.pool({ maxConnections: 1 });
  const get = [['REQUEST_METHOD', 'GET']] as Array<[string, string]>;
  assert.equal((await exchange(p, { params: get, body: null, contentLength: 0 })).status, 200);
  const retried = await exchange(p, { params: get, body: null, contentLength: 0 });
  assert.equal(retried.error, undefined);
  assert.equal(retried.status, 200);
  assert.equal(fpm.connections(), 2);
  // A POST gets a new connection (the idle kept one is closed for it): its body could not be replayed.
  const post = await exchange(p, { params: [['REQUEST_METHOD', 'POST']], body: Readable.from([Buffer.from('abc')]), contentLength: 3 });
  assert.equal(post.status, 200);
  assert.equal(fpm.connections(), 3);
  assert.equal(p.stats.connections, 1);
  // So does a body-less POST (not idempotent).
  await exchange(p, { params: [['REQUEST_METHOD', 'POST']], body: null, contentLength: 0 });
  assert.equal(fpm.connections(), 4);
});

test('response body stalls longer than bodyTimeoutMs -> QUICLB_FCGI_BODY_TIMEOUT, but not while the handler is paused', async () => {
  const fpm = await fakeFpm([
    (sock) => sock.write(stdout('Content-Type: text/plain\r\n\r\nfirst')),
    (sock) => {
      sock.write(stdout('Content-Type: text/plain\r\n\r\nfirst'));
      setTimeout(() => sock.write(Buffer.concat([stdout('-second'), end()])), 400);
    },
  ]);
  const p = fpm.pool({ bodyTimeoutMs: 200 });
  const stalled = await exchange(p, { params: [], body: null, contentLength: 0 });
  assert.equal(stalled.error?.code, 'QUICLB_FCGI_BODY_TIMEOUT');
  assert.deepEqual(stalled.events, ['start', 'response', 'data', 'error']);
  // Paused for 500 ms (longer than the timeout): the stall is the client's, not php-fpm's.
  const paused = await exchange(p, { params: [], body: null, contentLength: 0 }, {
    onResponse(c) {
      c.pause();
      setTimeout(() => c.resume(), 500);
    },
  });
  assert.equal(paused.error, undefined);
  assert.equal(paused.body.toString(), 'first-second');
});
