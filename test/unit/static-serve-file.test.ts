// serveFile through the FrontResponse contract: an in-memory response that records what it got (and controls
// backpressure), and a real node:http server driven by undici for the bytes on the wire.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'undici';
import { createSafeRoot, openSafeFile, type OpenFile, type SafePathPolicy, type SafeRoot } from '../../src/static/safe-path.ts';
import { serveFile, type ServeFileOptions } from '../../src/static/serve-file.ts';
import type { FrontRequest, FrontResponse, HeaderList } from '../../src/shared/http-types.ts';
import { writableSink } from '../../src/shared/writable-sink.ts';
import { recordingResponse, type RecordingOptions } from '../support/recording-response.ts';

const POLICY: SafePathPolicy = { deniedPaths: [], denyDotFiles: true, denyPhpSource: true, deniedStatus: 404 };
let dir = '';
let root: SafeRoot;
const BIG = randomBytes(3 * 1024 * 1024 + 123);
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'quiclb-serve-'));
  writeFileSync(join(dir, 'big.bin'), BIG);
  writeFileSync(join(dir, 'hello.txt'), 'hello world\n');
  writeFileSync(join(dir, 'empty.css'), '');
  writeFileSync(join(dir, 'doc.pdf'), '%PDF-1.4 fake');
  root = await createSafeRoot(dir);
});
after(() => rmSync(dir, { recursive: true, force: true }));

function req(path: string, headers: HeaderList = [], method = 'GET'): FrontRequest {
  return { protocol: 'HTTP/3', method, scheme: 'https', authority: 'm.test', path, headers, body: null, remoteAddress: '127.0.0.1', remotePort: 1, localPort: 443, connectionKey: 'c', shard: 0 };
}

async function open(path: string): Promise<OpenFile> {
  const r = await openSafeFile(root, path, POLICY);
  assert.ok(r.ok, `open ${path}`);
  return r.file;
}

async function serve(path: string, headers: HeaderList = [], method = 'GET', opts: ServeFileOptions = {}, rec: RecordingOptions = {}) {
  const file = await open(path);
  const r = recordingResponse(rec);
  const result = await serveFile(req(path, headers, method), r.res, file, opts);
  return { ...r, result, file };
}

describe('statuses and headers', () => {
  test('200: bytes equal, Content-Type by extension, Content-Length, strong ETag, Last-Modified, Accept-Ranges', async () => {
    const { rec, result, file } = await serve('/big.bin');
    assert.equal(rec.status, 200);
    assert.equal(sha(rec.body()), sha(BIG));
    assert.equal(rec.header('content-length'), String(BIG.length));
    assert.equal(rec.header('content-type'), 'application/octet-stream');
    assert.equal(rec.header('accept-ranges'), 'bytes');
    assert.match(rec.header('etag') ?? '', /^"[0-9a-f]+-[0-9a-f]+"$/);
    assert.equal(rec.header('last-modified'), new Date(Math.floor(file.stats.mtimeMs / 1000) * 1000).toUTCString());
    assert.ok(rec.ended);
    assert.deepEqual(result, { status: 200, bytes: BIG.length, completed: true });
    assert.equal(file.handle.fd, -1, 'file handle closed');
    assert.equal((await serve('/hello.txt')).rec.header('content-type'), 'text/plain; charset=utf-8');
    assert.equal((await serve('/doc.pdf')).rec.header('content-type'), 'application/pdf');
  });

  test('304 on If-None-Match and If-Modified-Since, keeping Cache-Control, without a body or Content-Type', async () => {
    const first = await serve('/hello.txt');
    const etag = first.rec.header('etag') as string;
    const lm = first.rec.header('last-modified') as string;
    const extra: HeaderList = [['cache-control', 'public, max-age=60'], ['content-type', 'text/x-custom']];
    for (const h of [[['if-none-match', etag]], [['if-modified-since', lm]]] as HeaderList[]) {
      const { rec, file } = await serve('/hello.txt', h, 'GET', { headers: extra });
      assert.equal(rec.status, 304);
      assert.equal(rec.body().length, 0);
      assert.equal(rec.header('etag'), etag);
      assert.equal(rec.header('cache-control'), 'public, max-age=60');
      assert.equal(rec.header('content-type'), undefined);
      assert.equal(file.handle.fd, -1);
    }
    assert.equal((await serve('/hello.txt', [['if-none-match', '"stale"']])).rec.status, 200);
    assert.equal((await serve('/hello.txt', [['if-match', '"stale"']])).rec.status, 412);
  });

  test('206 for one Range, with If-Range; 416 past the end; several ranges get the whole file', async () => {
    const { rec } = await serve('/big.bin', [['range', 'bytes=1000-1999']]);
    assert.equal(rec.status, 206);
    assert.equal(rec.header('content-range'), `bytes 1000-1999/${BIG.length}`);
    assert.equal(rec.header('content-length'), '1000');
    assert.deepEqual(rec.body(), BIG.subarray(1000, 2000));
    const suffix = await serve('/big.bin', [['range', 'bytes=-10']]);
    assert.deepEqual(suffix.rec.body(), BIG.subarray(BIG.length - 10));
    const etag = rec.header('etag') as string;
    assert.equal((await serve('/big.bin', [['range', 'bytes=0-9'], ['if-range', etag]])).rec.status, 206);
    const stale = await serve('/big.bin', [['range', 'bytes=0-9'], ['if-range', '"old"']]);
    assert.equal(stale.rec.status, 200);
    assert.equal(stale.rec.body().length, BIG.length);
    const bad = await serve('/big.bin', [['range', `bytes=${BIG.length}-`]]);
    assert.equal(bad.rec.status, 416);
    assert.equal(bad.rec.header('content-range'), `bytes */${BIG.length}`);
    assert.equal(bad.rec.body().length, 0);
    assert.equal((await serve('/big.bin', [['range', 'bytes=0-1,5-6']])).rec.status, 200);
    assert.equal((await serve('/empty.css', [['range', 'bytes=0-']])).rec.status, 416);
    // Range applies to GET only.
    assert.equal((await serve('/big.bin', [['range', 'bytes=0-9']], 'HEAD')).rec.status, 200);
  });

  test('HEAD: the GET headers without a body; other methods 405 unless the caller allows them (X-Accel-Redirect)', async () => {
    const { rec, file } = await serve('/big.bin', [], 'HEAD');
    assert.equal(rec.status, 200);
    assert.equal(rec.header('content-length'), String(BIG.length));
    assert.equal(rec.body().length, 0);
    assert.ok(rec.ended);
    assert.equal(file.handle.fd, -1);
    const post = await serve('/hello.txt', [], 'POST');
    assert.equal(post.rec.status, 405);
    assert.equal(post.rec.header('allow'), 'GET, HEAD');
    assert.equal(post.file.handle.fd, -1);
    const accel = await serve('/hello.txt', [], 'POST', { getHeadOnly: false });
    assert.equal(accel.rec.status, 200);
    assert.equal(accel.rec.body().toString(), 'hello world\n');
  });

  test('caller headers (PHP before X-Accel-Redirect) are kept; framing, validators and x-accel-* are the file\'s own', async () => {
    const php: HeaderList = [
      ['content-type', 'application/pdf'],
      ['content-disposition', 'attachment; filename="report.pdf"'],
      ['cache-control', 'private, max-age=10'],
      ['set-cookie', 'a=1'],
      ['set-cookie', 'b=2'],
      ['content-length', '999999'],
      ['etag', '"php-etag"'],
      ['x-accel-redirect', '/dataroot/filedir/ab/cd/abcd'],
      ['x-accel-buffering', 'no'],
    ];
    const { rec } = await serve('/hello.txt', [], 'GET', { headers: php });
    assert.equal(rec.header('content-type'), 'application/pdf');
    assert.equal(rec.header('content-disposition'), 'attachment; filename="report.pdf"');
    assert.equal(rec.header('cache-control'), 'private, max-age=10');
    assert.deepEqual(rec.headers.filter(([n]) => n === 'set-cookie').map(([, v]) => v), ['a=1', 'b=2']);
    assert.equal(rec.header('content-length'), '12');
    assert.notEqual(rec.header('etag'), '"php-etag"');
    assert.equal(rec.headers.filter(([n]) => n === 'content-length' || n === 'etag').length, 2);
    assert.equal(rec.headers.some(([n]) => n.startsWith('x-accel-')), false);
  });
});

describe('streaming', () => {
  test('backpressure: after write() returns false nothing is written until onDrain', async () => {
    const { rec, result } = await serve('/big.bin', [], 'GET', { chunkSize: 16 * 1024 }, { highWaterMark: 64 * 1024, drainDelayMs: 2 });
    assert.equal(rec.writesWhileFull, 0);
    assert.equal(sha(rec.body()), sha(BIG));
    assert.equal(result.completed, true);
  });

  test('client abort mid-body: reading stops and the file handle is closed', async () => {
    const file = await open('/big.bin');
    const r = recordingResponse({
      highWaterMark: 32 * 1024,
      drainDelayMs: 5,
      onWrite: (rec) => {
        if (rec.chunks.length === 3) r.clientAbort();
      },
    });
    const result = await serveFile(req('/big.bin'), r.res, file, { chunkSize: 16 * 1024 });
    assert.equal(result.completed, false);
    assert.ok(result.bytes < BIG.length);
    assert.equal(r.rec.ended, false);
    assert.equal(file.handle.fd, -1);
  });

  test('a file that shrinks while served aborts the response instead of ending it short', async () => {
    writeFileSync(join(dir, 'shrinks.bin'), Buffer.alloc(1024 * 1024, 1));
    const file = await open('/shrinks.bin');
    truncateSync(join(dir, 'shrinks.bin'), 100_000);
    const r = recordingResponse();
    const result = await serveFile(req('/shrinks.bin'), r.res, file);
    assert.equal(result.completed, false);
    assert.match(r.rec.aborted?.message ?? '', /shrank/);
    assert.equal(r.rec.ended, false);
    assert.equal(file.handle.fd, -1);
  });
});

describe('over a real HTTP server', () => {
  let server: Server;
  let origin = '';
  before(async () => {
    server = createServer((hreq, hres) => {
      const headers: HeaderList = [];
      for (let i = 0; i < hreq.rawHeaders.length; i += 2) headers.push([hreq.rawHeaders[i].toLowerCase(), hreq.rawHeaders[i + 1]]);
      const front = req(hreq.url ?? '/', headers, hreq.method ?? 'GET');
      let sent = false;
      const res: FrontResponse = {
        respond(status, h) {
          sent = true;
          hres.writeHead(status, h.flat());
          return writableSink(hres);
        },
        inform() {},
        abort: () => hres.destroy(),
        get headersSent() {
          return sent;
        },
        get finished() {
          return hres.writableFinished;
        },
        onClientAbort: (cb) => hres.once('close', () => !hres.writableFinished && cb()),
      };
      void openSafeFile(root, front.path, POLICY).then((r) => {
        if (!r.ok) {
          hres.writeHead(r.status).end();
          return;
        }
        void serveFile(front, res, r.file);
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    origin = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  });
  after(() => {
    server.closeAllConnections();
    return new Promise<void>((r) => server.close(() => r()));
  });

  test('GET, Range, HEAD and If-None-Match with undici', async () => {
    const full = await request(`${origin}/big.bin`);
    assert.equal(full.statusCode, 200);
    assert.equal(sha(Buffer.from(await full.body.arrayBuffer())), sha(BIG));
    const part = await request(`${origin}/big.bin`, { headers: { range: 'bytes=10-19' } });
    assert.equal(part.statusCode, 206);
    assert.deepEqual(Buffer.from(await part.body.arrayBuffer()), BIG.subarray(10, 20));
    const head = await request(`${origin}/big.bin`, { method: 'HEAD' });
    assert.equal(head.headers['content-length'], String(BIG.length));
    await head.body.dump();
    const again = await request(`${origin}/big.bin`, { headers: { 'if-none-match': String(full.headers.etag) } });
    assert.equal(again.statusCode, 304);
    await again.body.dump();
    const denied = await request(`${origin}/..%2fbig.bin`);
    assert.equal(denied.statusCode, 404);
    await denied.body.dump();
  });
});
