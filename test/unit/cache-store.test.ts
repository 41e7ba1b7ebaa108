// The shared store through ResponseCache's public API in one thread: storing, the size bound and LRU
// eviction, cache.maxEntrySize, purge, bodies that do not complete, expiry. Real SQLite files in a
// temporary directory.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { DatabaseSync } from 'node:sqlite';
import { join, dirname } from 'node:path';
import { prepareCacheStore, purgeCacheFile, ResponseCache } from '../../src/cache/cache.ts';
import { isCacheStoreError } from '../../src/cache/errors.ts';
import { CacheSharedState } from '../../src/shared/cache-state.ts';
import { CollectSink, expectFetch, expectHit, get, hitBody, openTestCache, sleep, storeThrough, tempSettings } from '../support/cache-fixtures.ts';

const PUBLIC = [['cache-control', 'public, max-age=600']] as Array<[string, string]>;

test('a stored response is a hit with the same status, headers, body and an Age', async () => {
  const { cache, shared } = openTestCache();
  const client = await storeThrough(cache, get('/theme/styles.php'), [...PUBLIC, ['content-type', 'text/css'], ['x-b', 'y']], 'body{}', 200, 3);
  assert.equal(client.text(), 'body{}');
  assert.equal(client.ended, true);
  const hit = await expectHit(cache, get('/theme/styles.php'));
  assert.equal(hit.status, 200);
  assert.equal(hit.state, 'fresh');
  const h = new Map(hit.headers);
  assert.equal(h.get('content-type'), 'text/css');
  assert.equal(h.get('x-b'), 'y');
  assert.equal(h.get('age'), '0');
  assert.equal(h.get('content-length'), '6');
  assert.equal(await hitBody(hit), 'body{}');
  const s = shared.snapshot();
  assert.deepEqual([s.misses, s.hits, s.stored, s.entries], [1, 1, 1, 1]);
  cache.close();
});

test('bodies over one 256 KiB chunk are stored in pieces and read back whole', async () => {
  const { cache } = openTestCache();
  const body = Buffer.alloc(700 * 1024);
  for (let i = 0; i < body.length; i++) body[i] = (i * 7) % 251;
  await storeThrough(cache, get('/big.js'), PUBLIC, body, 200, 13);
  const hit = await expectHit(cache, get('/big.js'));
  const parts: Uint8Array[] = [];
  for await (const c of hit.body()) parts.push(c);
  assert.equal(parts.length, 3);
  assert.ok(Buffer.concat(parts).equals(body));
  cache.close();
});

test('storing the same variant again replaces it: one entry', async () => {
  const { cache, shared } = openTestCache();
  await storeThrough(cache, get('/a'), [['cache-control', 'max-age=0'], ['etag', '"1"']], 'one');
  const fill = await expectFetch(cache, get('/a'));
  const sink = fill.tee(200, PUBLIC, new CollectSink());
  sink.end(Buffer.from('two'));
  fill.release();
  assert.equal(await hitBody(await expectHit(cache, get('/a'))), 'two');
  assert.equal(shared.snapshot().entries, 1);
  cache.close();
});

test('size bound: least recently used entries are evicted first', async () => {
  // Each entry is a 10 KiB body plus headers, key and overhead (~10.6 KiB): 3 fit in 35 KiB.
  const { cache, shared } = openTestCache({ maxSize: 35 * 1024 }, { touchIntervalMs: 0 });
  const body = 'x'.repeat(10 * 1024);
  for (const p of ['/a', '/b', '/c']) {
    await storeThrough(cache, get(p), PUBLIC, body);
    await sleep(5);
  }
  await expectHit(cache, get('/a')); // /a is now more recently used than /b and /c
  await sleep(5);
  await storeThrough(cache, get('/d'), PUBLIC, body);
  assert.equal(shared.snapshot().evicted, 1);
  (await expectFetch(cache, get('/b'))).release();
  for (const p of ['/c', '/a', '/d']) {
    await expectHit(cache, get(p));
    await sleep(5);
  }
  await storeThrough(cache, get('/e'), PUBLIC, body); // now /c is the least recently used
  (await expectFetch(cache, get('/c'))).release();
  const s = shared.snapshot();
  assert.equal(s.evicted, 2);
  assert.equal(s.entries, 3);
  assert.ok(s.bytes <= 35 * 1024, `${s.bytes} bytes stored`);
  cache.close();
});

test('maxEntrySize: a Content-Length above it is not stored; a body growing past it is dropped; at it, stored', async () => {
  const { cache, shared } = openTestCache({ maxEntrySize: 1000 });
  const client = await storeThrough(cache, get('/cl'), [...PUBLIC, ['content-length', '1001']], 'x'.repeat(1001));
  assert.equal(client.text().length, 1001, 'the client still gets the whole body');
  (await expectFetch(cache, get('/cl'))).release();
  const grown = await storeThrough(cache, get('/chunked'), PUBLIC, 'y'.repeat(1500), 200, 5);
  assert.equal(grown.text().length, 1500);
  (await expectFetch(cache, get('/chunked'))).release();
  await storeThrough(cache, get('/exact'), PUBLIC, 'z'.repeat(1000), 200, 4);
  await expectHit(cache, get('/exact'));
  const s = shared.snapshot();
  assert.equal(s.uncacheable, 2);
  assert.equal(s.stored, 1);
  cache.close();
});

test('a body that never ends (backend or client gone: the fill is released) or ends short of Content-Length is not stored', async () => {
  const { cache, shared } = openTestCache();
  const fill = await expectFetch(cache, get('/aborted'));
  const sink = fill.tee(200, PUBLIC, new CollectSink());
  sink.write(Buffer.from('half of it'));
  fill.release();
  (await expectFetch(cache, get('/aborted'))).release();

  const short = await expectFetch(cache, get('/short'));
  const s2 = short.tee(200, [...PUBLIC, ['content-length', '100']], new CollectSink());
  s2.end(Buffer.from('only 12 byte'));
  short.release();
  (await expectFetch(cache, get('/short'))).release();
  assert.equal(shared.snapshot().stored, 0);
  assert.equal(shared.snapshot().entries, 0);
  cache.close();
});

test('purge: by path prefix on any host, by URL prefix, everything', async () => {
  const { cache, shared } = openTestCache();
  for (const p of ['/theme/a.css', '/theme/b.css', '/lib/javascript.php/1/x.js', '/pluginfile.php/1/f.png']) await storeThrough(cache, get(p), PUBLIC, p);
  assert.equal(cache.purge('/theme/'), 2);
  (await expectFetch(cache, get('/theme/a.css'))).release();
  await expectHit(cache, get('/lib/javascript.php/1/x.js'));
  assert.equal(cache.purge('https://moodle.example.edu/lib/'), 1);
  assert.equal(cache.purge('https://other.example.edu/'), 0);
  await expectHit(cache, get('/pluginfile.php/1/f.png'));
  assert.equal(cache.purge(), 1);
  const s = shared.snapshot();
  assert.equal(s.purged, 4);
  assert.deepEqual([s.entries, s.bytes], [0, 0]);
  cache.close();
});

test('a purge while a body is being written drops that body too', async () => {
  const { cache } = openTestCache();
  const fill = await expectFetch(cache, get('/theme/x.css'));
  const sink = fill.tee(200, PUBLIC, new CollectSink());
  sink.write(Buffer.from('old theme'));
  cache.purge('/theme/');
  sink.end();
  fill.release();
  (await expectFetch(cache, get('/theme/x.css'))).release();
  cache.close();
});

test('purgeCacheFile works from another connection (the CLI) on the same file', async () => {
  const { cache, settings } = openTestCache();
  await storeThrough(cache, get('/theme/a.css'), PUBLIC, 'a');
  assert.equal(purgeCacheFile(settings, '/theme'), 1);
  (await expectFetch(cache, get('/theme/a.css'))).release();
  cache.close();
});

test('expiry: a response past max-age without a validator is fetched again, with a validator revalidated', async () => {
  const { cache, shared } = openTestCache();
  await storeThrough(cache, get('/plain'), [['cache-control', 'max-age=1']], 'p');
  await storeThrough(cache, get('/tagged'), [['cache-control', 'max-age=1'], ['etag', '"t1"']], 't');
  await expectHit(cache, get('/plain'));
  await sleep(1100);
  const plain = await expectFetch(cache, get('/plain'));
  assert.equal(plain.revalidating, false);
  plain.release();
  const tagged = await expectFetch(cache, get('/tagged', [['if-none-match', '"client"']]));
  assert.equal(tagged.revalidating, true);
  assert.deepEqual(
    tagged.backendHeaders([['host', 'h'], ['if-none-match', '"client"']]),
    [['host', 'h'], ['if-none-match', '"t1"']],
  );
  const hit = tagged.refresh([['cache-control', 'max-age=60'], ['etag', '"t1"']]);
  tagged.release();
  assert.equal(hit.state, 'revalidated');
  assert.equal(new Map(hit.headers).get('cache-control'), 'max-age=60');
  assert.equal(await hitBody(hit), 't');
  assert.equal((await expectHit(cache, get('/tagged'))).state, 'fresh');
  assert.equal(shared.snapshot().revalidated, 1);
  cache.close();
});

test('HEAD is answered from a stored GET; a HEAD miss neither waits nor stores', async () => {
  const { cache, shared } = openTestCache();
  const head = await expectFetch(cache, get('/h', [], 'HEAD'));
  const sink = head.tee(200, PUBLIC, new CollectSink());
  sink.end();
  head.release();
  (await expectFetch(cache, get('/h'))).release();
  assert.equal(shared.snapshot().stored, 0);
  await storeThrough(cache, get('/h'), PUBLIC, 'body');
  const hit = await expectHit(cache, get('/h', [], 'HEAD'));
  assert.equal(new Map(hit.headers).get('content-length'), '4');
  cache.close();
});

test('prepareCacheStore drops bodies a previous run left unfinished and recounts the totals', async () => {
  const settings = tempSettings();
  const shared = new CacheSharedState();
  prepareCacheStore(settings, shared);
  const cache = ResponseCache.open(settings, shared.buffer);
  await storeThrough(cache, get('/kept'), PUBLIC, 'kept');
  const fill = await expectFetch(cache, get('/unfinished'));
  fill.tee(200, PUBLIC, new CollectSink()).write(Buffer.from('half'));
  cache.close(); // the thread died mid-body

  const db = new DatabaseSync(settings.path);
  assert.equal((db.prepare('SELECT COUNT(*) AS n FROM entries WHERE complete = 0').get() as { n: number }).n, 1);
  db.close();
  const fresh = new CacheSharedState();
  prepareCacheStore(settings, fresh);
  assert.equal(fresh.snapshot().entries, 1);
  const again = ResponseCache.open(settings, fresh.buffer);
  await expectHit(again, get('/kept'));
  const db2 = new DatabaseSync(settings.path);
  assert.equal((db2.prepare('SELECT COUNT(*) AS n FROM entries').get() as { n: number }).n, 1);
  assert.equal((db2.prepare('SELECT COUNT(*) AS n FROM fills').get() as { n: number }).n, 0);
  db2.close();
  again.close();
});

test('a cache.path that is some other SQLite database is refused with a message naming the field', () => {
  const settings = tempSettings();
  const foreign = join(dirname(settings.path), 'moodle.sqlite');
  const db = new DatabaseSync(foreign);
  db.exec('CREATE TABLE entries (x)');
  db.close();
  let caught: unknown;
  try {
    prepareCacheStore({ ...settings, path: foreign }, new CacheSharedState());
  } catch (err) {
    caught = err;
  }
  assert.ok(isCacheStoreError(caught));
  assert.match((caught as Error).message, /^cache\.path: cannot open the cache store .*moodle\.sqlite.*quiclb did not create/);
  const dir = join(dirname(settings.path), 'not-a-dir');
  writeFileSync(dir, 'x');
  assert.throws(() => prepareCacheStore({ ...settings, path: join(dir, 'c.sqlite') }, new CacheSharedState()), (e: unknown) => isCacheStoreError(e));
});

test('a stale entry whose new answer may not be stored is dropped: not served, not even on a later backend error', async () => {
  const { cache } = openTestCache();
  await storeThrough(cache, get('/x'), [['cache-control', 'max-age=1, stale-if-error=600']], 'was public');
  await sleep(1100);
  const refetch = await expectFetch(cache, get('/x'));
  refetch.tee(200, [['cache-control', 'private, max-age=60']], new CollectSink()).end(Buffer.from('now private'));
  refetch.release();
  const after = await expectFetch(cache, get('/x'));
  assert.equal(after.onError(), undefined);
  cache.close();
});

test('a response being sent keeps its body when a newer copy replaces the entry; a purge removes it at once', async () => {
  const { cache, shared } = openTestCache();
  const oldBody = 'a'.repeat(700 * 1024);
  const newBody = 'b'.repeat(700 * 1024);
  await storeThrough(cache, get('/big.css'), PUBLIC, oldBody);
  const sending = await expectHit(cache, get('/big.css')); // only its first 256 KiB chunk is in hand
  sending.tee(200, PUBLIC, new CollectSink()).end(Buffer.from(newBody));
  assert.equal(await hitBody(await expectHit(cache, get('/big.css'))), newBody);
  assert.equal(await hitBody(sending), oldBody);
  assert.equal(shared.snapshot().entries, 1);

  const purged = await expectHit(cache, get('/big.css'));
  cache.purge('/big');
  await assert.rejects(hitBody(purged), { code: 'QUICLB_CACHE_ENTRY_GONE' });
  cache.close();
});

test('a new answer stored by a revalidation retires the stale entry it revalidated, of whatever coding', async () => {
  // The pipeline stores identity and br for a br client; a later stale-while-revalidate hit on the br variant
  // revalidates in the background, where only the backend's identity answer is stored.
  const { cache } = openTestCache();
  const swr: Array<[string, string]> = [['cache-control', 'max-age=1, stale-while-revalidate=60'], ['etag', '"1"'], ['content-type', 'text/css']];
  const br = get('/theme/s.css', [['accept-encoding', 'br']]);
  await storeThrough(cache, get('/theme/s.css'), swr, 'old, in identity');
  const identityHit = await expectHit(cache, br);
  const zHeaders: Array<[string, string]> = [...swr.filter(([k]) => k !== 'etag'), ['etag', 'W/"1"'], ['content-encoding', 'br'], ['vary', 'Accept-Encoding']];
  identityHit.tee(200, zHeaders, new CollectSink()).end(Buffer.from('old, br'));
  await sleep(1100);
  const found = await cache.lookup(br);
  assert.equal(found.kind, 'hit');
  const { hit, revalidate } = found as { hit: { encoding: string; state: string }; revalidate?: import('../../src/cache/fill.ts').Fill };
  assert.deepEqual([hit.encoding, hit.state], ['br', 'stale']);
  assert.ok(revalidate !== undefined);
  revalidate.tee(200, [['cache-control', 'max-age=60'], ['content-type', 'text/css']], new CollectSink()).end(Buffer.from('new, and longer than the old ones'));
  revalidate.release();
  const next = await expectHit(cache, br);
  assert.deepEqual([next.encoding, next.state], ['identity', 'fresh'], 'the stale br variant no longer answers');
  assert.equal(await hitBody(next), 'new, and longer than the old ones');
  cache.close();
});
