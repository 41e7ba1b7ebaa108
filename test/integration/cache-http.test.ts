// The cache over real HTTP: a node:http origin on 127.0.0.1, the test caching proxy (test/support/
// cache-proxy.ts, which calls src/cache the way the request pipeline does) and undici as the client.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { brotliDecompressSync, gunzipSync } from 'node:zlib';
import { request } from 'undici';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { CacheSharedState } from '../../src/shared/cache-state.ts';
import { prepareCacheStore } from '../../src/cache/cache.ts';
import { startCacheProxy, type CacheProxy, type CacheProxyOptions } from '../support/cache-proxy.ts';
import { startOrigin, type Origin } from '../support/origin.ts';
import { sleep, tempSettings } from '../support/cache-fixtures.ts';

const closers: Array<() => Promise<void>> = [];
after(async () => {
  for (const c of closers.reverse()) await c();
});

async function setup(handler: (req: IncomingMessage, res: ServerResponse, n: number) => void, opts: CacheProxyOptions = {}): Promise<{ origin: Origin; proxy: CacheProxy; shared: CacheSharedState; url: (p: string) => string }> {
  const origin = await startOrigin(handler);
  const settings = tempSettings();
  const shared = new CacheSharedState();
  prepareCacheStore(settings, shared);
  const proxy = await startCacheProxy(origin.url, settings, shared.buffer, opts);
  closers.push(() => origin.close(), () => proxy.close());
  return { origin, proxy, shared, url: (p) => `http://127.0.0.1:${proxy.port}${p}` };
}

async function get(url: string, headers: Record<string, string> = {}): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: Buffer }> {
  const r = await request(url, { headers });
  return { status: r.statusCode, headers: r.headers, body: Buffer.from(await r.body.arrayBuffer()) };
}

test('revalidation: a stale entry with an ETag is revalidated, the 304 refreshes it, the next request hits', async () => {
  const { origin, shared, url } = await setup((req, res, n) => {
    if (req.headers['if-none-match'] === '"v1"') {
      res.writeHead(304, { etag: '"v1"', 'cache-control': 'max-age=60' });
      res.end();
      return;
    }
    res.writeHead(200, { etag: '"v1"', 'cache-control': 'max-age=1', 'content-type': 'text/css' });
    res.end(`body ${n}`);
  });
  assert.equal((await get(url('/r.css'))).body.toString(), 'body 1');
  await sleep(1100);
  const second = await get(url('/r.css'), { 'if-none-match': '"someone-else"' });
  assert.equal(second.status, 200);
  assert.equal(second.body.toString(), 'body 1');
  assert.equal(second.headers['cache-control'], 'max-age=60');
  assert.equal(origin.requests.length, 2);
  assert.equal(origin.requests[1].headers['if-none-match'], '"v1"', "the cache's validator went to the backend, not the client's");
  const third = await get(url('/r.css'));
  assert.equal(third.body.toString(), 'body 1');
  assert.equal(origin.requests.length, 2);
  const s = shared.snapshot();
  assert.deepEqual([s.misses, s.revalidated, s.hits], [2, 1, 1]);
});

test('a client with matching validators gets 304 from the cache (If-None-Match, If-Modified-Since); Age on hits', async () => {
  const lastModified = new Date(Date.now() - 3600_000).toUTCString();
  const { origin, url } = await setup((_req, res) => {
    res.writeHead(200, { etag: '"abc"', 'last-modified': lastModified, 'cache-control': 'public, max-age=600', 'content-type': 'text/css' });
    res.end('css');
  });
  await get(url('/c.css'));
  await sleep(1100);
  const inm = await get(url('/c.css'), { 'if-none-match': 'W/"abc"' });
  assert.equal(inm.status, 304);
  assert.equal(inm.headers.etag, '"abc"');
  assert.ok(Number(inm.headers.age) >= 1, `Age ${String(inm.headers.age)}`);
  const ims = await get(url('/c.css'), { 'if-modified-since': new Date().toUTCString() });
  assert.equal(ims.status, 304);
  const other = await get(url('/c.css'), { 'if-none-match': '"zzz"' });
  assert.equal(other.status, 200);
  assert.equal(other.body.toString(), 'css');
  assert.ok(Number(other.headers.age) >= 1);
  assert.equal(origin.requests.length, 1);
});

test('Vary: a response is only served to requests with the same values; Vary: * is never stored', async () => {
  const { origin, url } = await setup((req, res) => {
    if (req.url === '/star') {
      res.writeHead(200, { 'cache-control': 'max-age=60', vary: '*' });
      res.end('star');
      return;
    }
    res.writeHead(200, { 'cache-control': 'max-age=60', vary: 'Accept-Language' });
    res.end(`lang ${req.headers['accept-language'] ?? 'none'}`);
  });
  assert.equal((await get(url('/v'), { 'accept-language': 'de' })).body.toString(), 'lang de');
  assert.equal((await get(url('/v'), { 'accept-language': 'en' })).body.toString(), 'lang en');
  assert.equal((await get(url('/v'))).body.toString(), 'lang none');
  assert.equal((await get(url('/v'), { 'accept-language': 'de' })).body.toString(), 'lang de');
  assert.equal((await get(url('/v'), { 'accept-language': 'en' })).body.toString(), 'lang en');
  assert.equal(origin.count('/v'), 3);
  await get(url('/star'));
  await get(url('/star'));
  assert.equal(origin.count('/star'), 2);
});

test('compressed variants: the backend runs once, each coding is made once, each client gets a coding it accepts', async () => {
  const css = 'body { color: red; }\n'.repeat(500);
  const { origin, proxy, url } = await setup(
    (_req, res) => {
      res.writeHead(200, { 'cache-control': 'public, max-age=600, immutable', etag: '"t1"', 'content-type': 'text/css' });
      res.end(css);
    },
    { compress: true },
  );
  const chrome = await get(url('/theme/styles.php'), { 'accept-encoding': 'gzip, deflate, br, zstd' });
  assert.equal(chrome.headers['content-encoding'], 'br');
  assert.equal(brotliDecompressSync(chrome.body).toString(), css);
  const brOnly = await get(url('/theme/styles.php'), { 'accept-encoding': 'br' });
  assert.equal(brOnly.headers['content-encoding'], 'br');
  assert.equal(proxy.compressions(), 1, 'the br variant was served from the cache');
  const gzipOnly = await get(url('/theme/styles.php'), { 'accept-encoding': 'gzip' });
  assert.equal(gzipOnly.headers['content-encoding'], 'gzip');
  assert.equal(gunzipSync(gzipOnly.body).toString(), css);
  assert.equal(proxy.compressions(), 2, 'gzip made once from the stored identity body');
  const gzipDeflate = await get(url('/theme/styles.php'), { 'accept-encoding': 'gzip, deflate' });
  assert.equal(gzipDeflate.headers['content-encoding'], 'gzip');
  const plain = await get(url('/theme/styles.php'));
  assert.equal(plain.headers['content-encoding'], undefined);
  assert.equal(plain.body.toString(), css);
  assert.equal(proxy.compressions(), 2);
  assert.equal(origin.count('/theme/styles.php'), 1, 'PHP ran once');
});

test('stale-while-revalidate: the stale entry is served at once and refreshed in the background', async () => {
  const { origin, shared, url } = await setup((_req, res, n) => {
    res.writeHead(200, { 'cache-control': 'max-age=1, stale-while-revalidate=30' });
    res.end(`v${n}`);
  });
  assert.equal((await get(url('/swr'))).body.toString(), 'v1');
  await sleep(1100);
  const stale = await get(url('/swr'));
  assert.equal(stale.body.toString(), 'v1');
  assert.ok(Number(stale.headers.age) >= 1);
  for (let i = 0; i < 50 && origin.count('/swr') < 2; i++) await sleep(20);
  await sleep(50);
  assert.equal((await get(url('/swr'))).body.toString(), 'v2');
  assert.equal(origin.count('/swr'), 2);
  assert.equal(shared.snapshot().stale, 1);
});

test('stale-if-error: a stale entry answers when the backend fails with 5xx; must-revalidate forbids it', async () => {
  const { url } = await setup((req, res, n) => {
    if (n > 1) {
      res.writeHead(503, { 'content-type': 'text/plain' });
      res.end('down');
      return;
    }
    res.writeHead(200, { 'cache-control': req.url === '/strict' ? 'max-age=1, must-revalidate, stale-if-error=60' : 'max-age=1, stale-if-error=60' });
    res.end('good');
  });
  await get(url('/sie'));
  await get(url('/strict'));
  await sleep(1100);
  const r = await get(url('/sie'));
  assert.equal(r.status, 200);
  assert.equal(r.body.toString(), 'good');
  assert.equal((await get(url('/strict'))).status, 503);
});

test('stale-if-error: a stale entry answers when the backend is unreachable', async () => {
  const { origin, url } = await setup((_req, res) => {
    res.writeHead(200, { 'cache-control': 'max-age=1, stale-if-error=60' });
    res.end('kept');
  });
  await get(url('/gone'));
  await origin.close();
  await sleep(1100);
  const r = await get(url('/gone'));
  assert.equal(r.status, 200);
  assert.equal(r.body.toString(), 'kept');
});

test('never stored: Set-Cookie, private, no-store, Authorization without public; POST bypasses', async () => {
  const { origin, shared, url } = await setup((req, res) => {
    const headers: Record<string, string> = { 'cache-control': 'max-age=60' };
    if (req.url === '/cookie') headers['set-cookie'] = 'MoodleSession=abc; path=/';
    if (req.url === '/private') headers['cache-control'] = 'private, max-age=60';
    if (req.url === '/nostore') headers['cache-control'] = 'no-store';
    res.writeHead(200, headers);
    res.end('x');
  });
  for (const p of ['/cookie', '/private', '/nostore']) {
    await get(url(p));
    await get(url(p));
    assert.equal(origin.count(p), 2, p);
  }
  await get(url('/auth'), { authorization: 'Basic dTpw' });
  await get(url('/auth'), { authorization: 'Basic dTpw' });
  assert.equal(origin.count('/auth'), 2);
  await request(url('/post'), { method: 'POST', body: 'a' }).then((r) => r.body.dump());
  const s = shared.snapshot();
  assert.equal(s.stored, 0);
  assert.equal(s.uncacheable, 8);
  assert.equal(s.bypass, 1);
});

test('a response aborted mid-body is not stored; the next complete one is', async () => {
  const { origin, url } = await setup((_req, res, n) => {
    res.writeHead(200, { 'cache-control': 'max-age=60', 'content-length': '20000' });
    if (n === 1) {
      res.write(Buffer.alloc(10000, 'a'));
      setTimeout(() => res.socket?.destroy(), 20);
      return;
    }
    res.end(Buffer.alloc(20000, 'b'));
  });
  await assert.rejects(get(url('/abort')));
  const second = await get(url('/abort'));
  assert.equal(second.body.length, 20000);
  assert.equal(second.body[0], 'b'.charCodeAt(0));
  await get(url('/abort'));
  assert.equal(origin.count('/abort'), 2);
});

test("the client's Cache-Control and Pragma do not force a miss for everyone", async () => {
  const { origin, url } = await setup((_req, res) => {
    res.writeHead(200, { 'cache-control': 'public, max-age=600' });
    res.end('shared');
  });
  await get(url('/reload'));
  await get(url('/reload'), { 'cache-control': 'no-cache, max-age=0', pragma: 'no-cache' });
  await get(url('/reload'), { 'cache-control': 'no-store' });
  assert.equal(origin.count('/reload'), 1);
});
