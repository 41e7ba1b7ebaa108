// The response cache with compression on (real quiclb, 2 shards, nginx + php-fpm): the backend runs once per
// URL and each coding is made once. A br client's miss stores the backend's identity body and the br body;
// br clients then hit the br variant, a gzip client gets the identity entry gzipped once (stored as the gzip
// variant), and clients without Accept-Encoding get identity.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { brotliDecompressSync, gunzipSync } from 'node:zlib';
import { curl, http3Get, runOf, startCacheLb, type Answer, type CacheLb } from '../support/cache-lb.ts';
import { sleep } from '../support/cache-fixtures.ts';

let t: CacheLb;

before(async () => {
  t = await startCacheLb({ cache: { enabled: true }, compression: { enabled: true } });
});

after(async () => {
  await t?.stop();
});

const compressed = async (): Promise<Record<string, number>> => {
  const c = (await t.stats()).compression;
  return { br: c.br.responses, gzip: c.gzip.responses, zstd: c.zstd.responses };
};

function decoded(a: Answer): Buffer {
  const coding = a.headers['content-encoding'];
  if (coding === 'br') return brotliDecompressSync(a.body);
  if (coding === 'gzip') return gunzipSync(a.body);
  assert.equal(coding, undefined, `unexpected coding ${coding}`);
  return a.body;
}

test('a stylesheet is compressed once per coding and served from the cache afterwards (br and gzip clients)', { timeout: 60_000 }, async () => {
  const path = '/cache/resource.php?id=css&cc=public,max-age=300&etag=c1&bytes=20000';
  const ask = (ae: string | undefined, http: '1.1' | '2' = '2') => curl(t.origin + path, { http, headers: ae === undefined ? {} : { 'accept-encoding': ae } });
  const before = await compressed();
  const stored0 = (await t.stats()).cache.stored;

  const br1 = await ask('br');
  assert.equal(br1.headers['content-encoding'], 'br');
  assert.equal(br1.headers.etag, 'W/"c1"', 'a compressed body has a weak ETag');
  const identity = decoded(br1);
  assert.equal(identity.length, 20000);
  assert.equal(runOf(identity), 1);
  // The br body and the backend's identity body are both stored (the br one when the encoder has finished).
  for (let i = 0; i < 50 && (await t.stats()).cache.stored < stored0 + 2; i++) await sleep(20);
  assert.equal((await t.stats()).cache.stored, stored0 + 2);

  const br2 = await ask('br', '1.1');
  assert.equal(br2.headers['content-encoding'], 'br');
  assert.deepEqual(br2.body, br1.body, 'the stored br bytes');
  const brH3 = await http3Get(t.lb.httpsPort, path, [['accept-encoding', 'gzip, deflate, br, zstd']]);
  assert.equal(brH3.headers['content-encoding'], 'br', 'a browser accepting every coding gets the stored br variant');
  assert.deepEqual(brH3.body, br1.body);
  assert.deepEqual(await compressed(), { ...before, br: before.br + 1 }, 'br made once');

  const gz1 = await ask('gzip');
  assert.equal(gz1.headers['content-encoding'], 'gzip');
  assert.deepEqual(decoded(gz1), identity);
  for (let i = 0; i < 50 && (await t.stats()).cache.stored < stored0 + 3; i++) await sleep(20);
  const gz2 = await ask('gzip, deflate', '1.1');
  assert.equal(gz2.headers['content-encoding'], 'gzip');
  assert.deepEqual(gz2.body, gz1.body, 'the stored gzip bytes');
  assert.deepEqual(await compressed(), { ...before, br: before.br + 1, gzip: before.gzip + 1 }, 'gzip made once, from the stored identity body');

  const plain = await ask(undefined, '1.1');
  assert.equal(plain.headers['content-encoding'], undefined);
  assert.deepEqual(plain.body, identity, 'no Accept-Encoding: the identity body');
  assert.equal(plain.headers.etag, '"c1"');
  for (const a of [br1, br2, gz1, gz2, plain]) assert.match(a.headers.vary ?? '', /accept-encoding/i);

  assert.equal((await t.runs('css')).length, 1, 'PHP ran once');
  assert.deepEqual(await compressed(), { ...before, br: before.br + 1, gzip: before.gzip + 1 });
});

test('a client without Accept-Encoding first: identity is stored, the br client compresses it once', async () => {
  const path = '/cache/resource.php?id=css2&cc=public,max-age=300&bytes=8000';
  const before = await compressed();
  const plain = await curl(t.origin + path, { http: '1.1' });
  assert.equal(plain.headers['content-encoding'], undefined);
  const br = await curl(t.origin + path, { http: '2', headers: { 'accept-encoding': 'br' } });
  assert.equal(br.headers['content-encoding'], 'br');
  assert.deepEqual(decoded(br), plain.body);
  for (let i = 0; i < 3; i++) {
    const again = await curl(t.origin + path, { http: '2', headers: { 'accept-encoding': 'br' } });
    assert.deepEqual(again.body, br.body);
  }
  assert.equal((await compressed()).br, before.br + 1);
  assert.equal((await t.runs('css2')).length, 1);
});
