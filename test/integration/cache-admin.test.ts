// The response cache's size bound and purge, through the real quiclb (2 shards, cache.maxSize 1 MiB,
// admin.token set) and nginx + php-fpm: least recently used entries are evicted, POST /cache/purge removes
// what its prefix names (same access rules as /stats; refused from web pages), and `quiclb cache purge`
// does the same from another process on the store file.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { request } from 'undici';
import { curl, runOf, startCacheLb, type CacheLb } from '../support/cache-lb.ts';
import { BIN, ROOT } from '../support/quiclb-process.ts';

const TOKEN = 'purge-test-token';
let t: CacheLb;

before(async () => {
  t = await startCacheLb({ cache: { enabled: true, maxSize: '1MiB', maxEntrySize: '512KiB' }, admin: { token: TOKEN } });
});

after(async () => {
  await t?.stop();
});

async function purge(query: string, headers: Record<string, string> = {}, method = 'POST'): Promise<{ status: number; body: any }> {
  const r = await request(`http://127.0.0.1:${t.lb.httpPort}/cache/purge${query}`, { method: method as 'POST', headers });
  return { status: r.statusCode, body: await r.body.json() };
}

function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [BIN, ...args], { cwd: ROOT }, (err, stdout, stderr) => {
      resolve({ code: err === null ? 0 : ((err as { code?: number }).code ?? 1), stdout, stderr });
    });
  });
}

const resource = (id: string, extra = '') => `${t.origin}/cache/resource.php?id=${id}&cc=public,max-age=300${extra}`;

test('eviction at cache.maxSize: least recently used entries go first, the store stays within the bound', { timeout: 60_000 }, async () => {
  const before = (await t.stats()).cache;
  // 300 KB bodies: three fit in 1 MiB, each later one evicts the oldest.
  for (let i = 0; i < 5; i++) assert.equal(runOf((await curl(resource(`ev${i}`, '&bytes=300000'), { http: '2' })).body), 1);
  const after = (await t.stats()).cache;
  assert.equal(after.stored - before.stored, 5);
  assert.equal(after.evicted - before.evicted, 2);
  assert.ok(after.bytes <= 1024 * 1024, `bytes ${after.bytes}`);
  assert.equal(after.entries, 3);
  assert.equal(runOf((await curl(resource('ev4', '&bytes=300000'), { http: '1.1' })).body), 1, 'the newest is still stored');
  assert.equal(runOf((await curl(resource('ev0', '&bytes=300000'), { http: '1.1' })).body), 2, 'the oldest was evicted');
  assert.deepEqual(await Promise.all(['ev0', 'ev1', 'ev2', 'ev3', 'ev4'].map(async (id) => (await t.runs(id)).length)), [2, 1, 1, 1, 1]);
  // A body larger than cache.maxEntrySize passes through, unstored.
  for (let i = 0; i < 2; i++) await curl(resource('big', '&bytes=600000'), { http: '2' });
  assert.equal((await t.runs('big')).length, 2);
});

test('POST /cache/purge: bearer token as /stats, refused from web pages, removes what the prefix names', async () => {
  for (const id of ['pa', 'pb']) await curl(resource(id), { http: '1.1' });
  const auth = { authorization: `Bearer ${TOKEN}` };
  assert.equal((await purge('', {}, 'GET')).status, 405);
  assert.equal((await purge('')).status, 401, 'admin.token is set: the bearer token is needed');
  assert.equal((await purge('', { authorization: 'Bearer wrong-token' })).status, 401);
  const fromPage = await purge('', { ...auth, origin: `http://127.0.0.1:${t.lb.httpPort}` });
  assert.equal(fromPage.status, 403, 'a browser request (Origin) is refused, even same-origin');
  assert.equal((await purge('', { ...auth, 'sec-fetch-site': 'cross-site' })).status, 403);
  assert.equal((await purge('?prefix=theme', auth)).status, 400, 'a prefix that can match nothing is refused');
  const done = await purge(`?prefix=${encodeURIComponent('/cache/resource.php?id=pa&')}`, auth);
  assert.deepEqual(done, { status: 200, body: { purged: 1, prefix: '/cache/resource.php?id=pa&' } });
  assert.equal(runOf((await curl(resource('pa'), { http: '2' })).body), 2, 'purged: back to the backend');
  assert.equal(runOf((await curl(resource('pb'), { http: '2' })).body), 1, 'another URL stays');
  const byUrl = await purge(`?prefix=${encodeURIComponent(`${t.origin}/cache/resource.php?id=pb&`)}`, auth);
  assert.equal(byUrl.body.purged, 1, 'a whole-URL prefix');
  assert.equal(runOf((await curl(resource('pb'), { http: '2' })).body), 2);
  assert.ok((await t.stats()).cache.purged >= 2);
});

test('quiclb cache purge [PREFIX] --config FILE purges the running quiclb\'s store from another process', { timeout: 60_000 }, async () => {
  await curl(resource('cli-a'), { http: '1.1' });
  await curl(resource('cli-b'), { http: '1.1' });
  const one = await cli(['cache', 'purge', '/cache/resource.php?id=cli-a&', '--config', t.lb.configFile]);
  assert.equal(one.code, 0, one.stderr);
  assert.match(one.stdout, /^purged 1 entry under \/cache\/resource\.php\?id=cli-a& from .*cache\.sqlite$/m);
  assert.equal(runOf((await curl(resource('cli-a'), { http: '2' })).body), 2);
  assert.equal(runOf((await curl(resource('cli-b'), { http: '2' })).body), 1);
  const all = await cli(['cache', 'purge', '--config', t.lb.configFile]);
  assert.equal(all.code, 0, all.stderr);
  assert.match(all.stdout, /^purged \d+ entries from /m);
  assert.equal(runOf((await curl(resource('cli-b'), { http: '2' })).body), 2, 'everything went');

  const elsewhere = path.join(path.dirname(t.lb.configFile), 'other.json');
  await writeFile(elsewhere, JSON.stringify({ tls: { stateDir: path.join(path.dirname(t.lb.configFile), 'nowhere') }, cache: { enabled: true } }));
  const none = await cli(['cache', 'purge', '--config', elsewhere]);
  assert.equal(none.code, 1);
  assert.match(none.stderr, /no cache store at .*nowhere\/cache\.sqlite/);
  const bad = await cli(['cache', 'purge', 'theme', '--config', t.lb.configFile]);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /matches nothing/);
});

test('quiclb start with a cache.path it cannot use exits 2 with one line naming the field', { timeout: 60_000 }, async () => {
  const dir = path.dirname(t.lb.configFile);
  const notADir = path.join(dir, 'plain-file');
  await writeFile(notADir, 'x');
  const config = path.join(dir, 'bad-cache.json');
  await writeFile(config, JSON.stringify({ server: { bindAddress: '127.0.0.1' }, tls: { stateDir: path.join(dir, 'bad-state') }, loadBalancer: { backendServers: [{ id: 'b', host: '127.0.0.1', port: 9 }] }, cache: { enabled: true, path: path.join(notADir, 'cache.sqlite') } }));
  const r = await cli(['start', '--config', config, '--workers', '1']);
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, /^quiclb: cache\.path: cannot open the cache store ".*plain-file\/cache\.sqlite" \(.*\); check that its directory is writable/m);
});
