// The response cache in quiclb's request pipeline, end to end: the real quiclb (2 shards, moodle.enableCaching,
// session persistence on as by default) in front of nginx + php-fpm backends running
// test/fixtures/php/cache/resource.php, asked by curl (HTTP/1.1 and HTTP/2), node:http2 and our HTTP/3 client.
// Every test uses its own resource id, so each counts its own backend runs.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { curl, http2Get, http3Get, runOf, startCacheLb, type CacheLb } from '../support/cache-lb.ts';
import { sleep } from '../support/cache-fixtures.ts';

let t: CacheLb;

before(async () => {
  t = await startCacheLb({ moodle: { enableCaching: true } });
});

after(async () => {
  await t?.stop();
});

const STYLE = 'cc=public,max-age=300&etag=v1';

test('a public max-age stylesheet asked over HTTP/1.1, HTTP/2 and HTTP/3 on 2 shards runs PHP once', { timeout: 60_000 }, async () => {
  const before = await t.stats();
  const path = `/cache/resource.php?id=proto&${STYLE}`;
  const answers = [
    await curl(t.origin + path, { http: '1.1' }),
    await curl(t.origin + path, { http: '2' }),
    await http2Get(t.origin, path),
    await http3Get(t.lb.httpsPort, path),
    await curl(t.origin + path, { http: '1.1' }),
    await curl(t.origin + path, { http: '2' }),
    await http2Get(t.origin, path),
    await http3Get(t.lb.httpsPort, path),
  ];
  assert.deepEqual(answers.map((a) => a.httpVersion), ['1.1', '2', '2', '3', '1.1', '2', '2', '3']);
  for (const a of answers) {
    assert.equal(a.status, 200);
    assert.equal(runOf(a.body), 1, 'every client got the body of the one run');
    assert.equal(a.body.length, 4096);
    assert.equal(a.headers.etag, '"v1"');
  }
  assert.equal((await t.runs('proto')).length, 1, 'PHP ran once');
  assert.ok(Number(answers[7].headers.age) >= 0, 'a hit carries Age');
  const after = await t.stats();
  // Both shards answered some of the requests (new connections go to the least loaded shard, ties round robin).
  for (const s of after.shards) assert.ok(s.requests > before.shards[s.index].requests, `shard ${s.index} served requests`);
  assert.equal(after.cache.misses - before.cache.misses, 1);
  assert.equal(after.cache.hits - before.cache.hits, 7);
  assert.equal(after.cache.stored - before.cache.stored, 1);
});

test('HEAD is answered from a stored GET; a client whose If-None-Match matches gets 304 from the cache', async () => {
  const path = `/cache/resource.php?id=head&${STYLE}`;
  const first = await curl(t.origin + path, { http: '2' });
  assert.equal(first.status, 200);
  const head = await curl(t.origin + path, { http: '1.1', method: 'HEAD' });
  assert.equal(head.status, 200);
  assert.equal(head.headers['content-length'], '4096');
  assert.equal(head.body.length, 0);
  for (const inm of ['"v1"', 'W/"v1"', '"other", "v1"', '*']) {
    const conditional = await curl(t.origin + path, { http: '2', headers: { 'if-none-match': inm } });
    assert.equal(conditional.status, 304, `If-None-Match: ${inm}`);
    assert.equal(conditional.headers.etag, '"v1"');
    assert.equal(conditional.body.length, 0);
  }
  const other = await curl(t.origin + path, { http: '1.1', headers: { 'if-none-match': '"v0"' } });
  assert.equal(other.status, 200);
  assert.equal(runOf(other.body), 1);
  assert.equal((await t.runs('head')).length, 1, 'PHP ran once');
});

test('a logged-in Moodle page (MoodleSession, private) reaches PHP every time', async () => {
  const path = '/cache/resource.php?id=page&session=1&type=text/html&cc=private,pre-check=0,post-check=0,max-age=0,no-transform';
  const first = await curl(t.origin + path, { http: '2' });
  const session = first.setCookies.find((c) => c.startsWith('MoodleSession='));
  assert.ok(session !== undefined, 'PHP opened a session');
  const cookie = session.split(';')[0];
  const affinity = first.setCookies.find((c) => c.startsWith('QUICLB_AFFINITY='));
  for (let i = 0; i < 3; i++) {
    const again = await curl(t.origin + path, { http: i % 2 === 0 ? '1.1' : '2', headers: { cookie: affinity ? `${cookie}; ${affinity.split(';')[0]}` : cookie } });
    assert.equal(again.status, 200);
    assert.equal(runOf(again.body), i + 2, 'a fresh page every time');
  }
  assert.equal((await t.runs('page')).length, 4);
});

test('the rules through quiclb: Set-Cookie, private and no-store are never stored; Authorization only with public', async () => {
  const cases: Array<{ id: string; query: string; headers?: Record<string, string>; runs: number }> = [
    { id: 'setcookie', query: 'cc=public,max-age=300&setcookie=1', runs: 3 },
    { id: 'private', query: 'cc=private,max-age=300', runs: 3 },
    { id: 'nostore', query: 'cc=no-store', runs: 3 },
    { id: 'nofreshness', query: 'etag=x', runs: 3 },
    { id: 'auth-plain', query: 'cc=max-age=300', headers: { authorization: 'Bearer student' }, runs: 3 },
    { id: 'auth-public', query: 'cc=public,max-age=300', headers: { authorization: 'Bearer student' }, runs: 1 },
    { id: 'plain-maxage', query: 'cc=max-age=300', runs: 1 },
  ];
  for (const c of cases) {
    const path = `/cache/resource.php?id=${c.id}&${c.query}`;
    for (let i = 0; i < 3; i++) {
      const a = await curl(t.origin + path, { http: i === 1 ? '2' : '1.1', headers: c.headers });
      assert.equal(a.status, 200, c.id);
    }
    assert.equal((await t.runs(c.id)).length, c.runs, `${c.id}: PHP runs`);
  }
  // A request with Authorization is not answered from what another request stored without it... unless public.
  const stored = await curl(t.origin + '/cache/resource.php?id=plain-maxage&cc=max-age=300', { http: '1.1', headers: { authorization: 'Bearer other' } });
  assert.equal(runOf(stored.body), 1, 'the stored response serves requests with Authorization too (RFC 9111 §3.5 restricts storing, not serving)');
});

test('Vary: one variant per Accept-Language value; Vary: * is never stored', async () => {
  const path = '/cache/resource.php?id=vary&cc=public,max-age=300&vary=Accept-Language';
  const ask = (lang: string) => curl(t.origin + path, { http: '2', headers: { 'accept-language': lang } });
  assert.equal(runOf((await ask('en')).body), 1);
  assert.equal(runOf((await ask('de')).body), 2);
  assert.equal(runOf((await ask('en')).body), 1);
  assert.equal(runOf((await ask('de')).body), 2);
  assert.equal((await t.runs('vary')).length, 2);
  const star = '/cache/resource.php?id=varystar&cc=public,max-age=300&vary=*';
  for (let i = 0; i < 2; i++) await curl(t.origin + star, { http: '1.1' });
  assert.equal((await t.runs('varystar')).length, 2);
});

test('expiry: after max-age the next request goes to the backend again', async () => {
  // Date has whole seconds, so an entry with max-age=3 expires 2 to 3 s after the backend made it.
  const path = '/cache/resource.php?id=expiry&cc=public,max-age=3';
  assert.equal(runOf((await curl(t.origin + path, { http: '1.1' })).body), 1);
  assert.equal(runOf((await curl(t.origin + path, { http: '2' })).body), 1);
  await sleep(3100);
  assert.equal(runOf((await curl(t.origin + path, { http: '2' })).body), 2);
  assert.equal(runOf((await curl(t.origin + path, { http: '1.1' })).body), 2);
  const runs = await t.runs('expiry');
  assert.equal(runs.length, 2);
  assert.equal(runs[1].ifNoneMatch, null, 'no validator stored, none sent');
});

test('revalidation: the backend gets If-None-Match with the stored ETag, its 304 refreshes the entry', async () => {
  const before = (await t.stats()).cache;
  // The 304 says max-age=300: the refreshed entry takes the 304's fields (RFC 9111 §4.3.4).
  const path = '/cache/resource.php?id=reval&cc=public,max-age=1&cc304=public,max-age=300&etag=r1';
  // The client's own validator does not go to the backend on a miss: the full answer is needed to store it.
  const first = await curl(t.origin + path, { http: '1.1', headers: { 'if-none-match': '"r0"' } });
  assert.equal(first.status, 200);
  await sleep(1500);
  const second = await curl(t.origin + path, { http: '2', headers: { 'if-none-match': '"someone-else"' } });
  assert.equal(second.status, 200);
  assert.equal(runOf(second.body), 1, 'the stored body, confirmed by the 304');
  assert.equal(second.headers['cache-control'], 'public,max-age=300', "the 304's fields replace the stored ones");
  const runs = await t.runs('reval');
  assert.deepEqual(
    runs.map((r) => [r.status, r.ifNoneMatch]),
    [
      [200, null],
      [304, '"r1"'],
    ],
  );
  const third = await curl(t.origin + path, { http: '2', headers: { 'if-none-match': '"r1"' } });
  assert.equal(third.status, 304, 'fresh again: the cache answers the client validator itself');
  assert.equal((await t.runs('reval')).length, 2);
  const after = (await t.stats()).cache;
  assert.equal(after.revalidated - before.revalidated, 1);
});

test('stale-while-revalidate: the stale entry is served at once and revalidated in the background', async () => {
  const before = (await t.stats()).cache;
  const path = '/cache/resource.php?id=swr&cc=public,max-age=1,stale-while-revalidate=30&cc304=public,max-age=300&etag=s1';
  await curl(t.origin + path, { http: '1.1' });
  await sleep(1500);
  const stale = await curl(t.origin + path, { http: '2' });
  assert.equal(stale.status, 200);
  assert.equal(runOf(stale.body), 1);
  assert.ok(Number(stale.headers.age) >= 1, `Age ${stale.headers.age}`);
  for (let i = 0; i < 100 && (await t.runs('swr')).length < 2; i++) await sleep(50);
  const runs = await t.runs('swr');
  assert.deepEqual(runs.map((r) => [r.status, r.ifNoneMatch]), [[200, null], [304, '"s1"']]);
  for (let i = 0; i < 50 && (await t.stats()).cache.revalidated === before.revalidated; i++) await sleep(50);
  const fresh = await curl(t.origin + path, { http: '1.1' });
  assert.equal(runOf(fresh.body), 1);
  assert.equal((await t.runs('swr')).length, 2, 'the refreshed entry is fresh again');
  const after = (await t.stats()).cache;
  assert.equal(after.stale - before.stale, 1);
  assert.equal(after.revalidated - before.revalidated, 1);
});

test('stale-if-error: a 5xx from the backend is replaced by the stale entry', async () => {
  const path = '/cache/resource.php?id=sie&cc=public,max-age=1,stale-if-error=60&fail_after=1';
  assert.equal(runOf((await curl(t.origin + path, { http: '1.1' })).body), 1);
  await sleep(1500);
  const served = await curl(t.origin + path, { http: '2' });
  assert.equal(served.status, 200);
  assert.equal(runOf(served.body), 1);
  assert.deepEqual((await t.runs('sie')).map((r) => r.status), [200, 503]);
  // Without stale-if-error the 503 goes through.
  const plain = '/cache/resource.php?id=nosie&cc=public,max-age=1&fail_after=1';
  await curl(t.origin + plain, { http: '1.1' });
  await sleep(1500);
  assert.equal((await curl(t.origin + plain, { http: '1.1' })).status, 503);
});

test("quiclb's affinity cookie does not stop a response from being stored and never comes from the store", async () => {
  const path = `/cache/resource.php?id=affinity&${STYLE}`;
  const first = await curl(t.origin + path, { http: '1.1' });
  const affinity = first.setCookies.filter((c) => c.startsWith('QUICLB_AFFINITY='));
  assert.equal(affinity.length, 1, 'the filling client is pinned to its backend (session persistence is on)');
  for (const http of ['1.1', '2'] as const) {
    const other = await curl(t.origin + path, { http });
    assert.equal(runOf(other.body), 1, 'served from the store');
    assert.deepEqual(other.setCookies, [], 'no Set-Cookie in a stored answer');
  }
  const h3 = await http3Get(t.lb.httpsPort, path);
  assert.deepEqual(h3.setCookies, []);
  assert.equal((await t.runs('affinity')).length, 1);
});

test('coalescing: 50 concurrent misses over both shards make one backend request', { timeout: 60_000 }, async () => {
  const before = await t.stats();
  const path = '/cache/resource.php?id=coalesce&cc=public,max-age=300&sleep_ms=1500';
  const url = `http://127.0.0.1:${t.lb.httpPort}${path}`;
  const { Agent, request } = await import('undici');
  // One connection per request: the primary spreads connections over the shards.
  const agent = new Agent({ connections: 50, pipelining: 1 });
  try {
    const bodies = await Promise.all(
      Array.from({ length: 50 }, async () => {
        const r = await request(url, { dispatcher: agent });
        return { status: r.statusCode, body: Buffer.from(await r.body.arrayBuffer()) };
      }),
    );
    for (const b of bodies) {
      assert.equal(b.status, 200);
      assert.equal(runOf(b.body), 1);
    }
  } finally {
    await agent.close();
  }
  assert.equal((await t.runs('coalesce')).length, 1, 'one backend request');
  const after = await t.stats();
  for (const s of after.shards) assert.ok(s.requests > before.shards[s.index].requests, `shard ${s.index} took some of the requests`);
  assert.equal(after.cache.misses - before.cache.misses, 1);
  assert.equal(after.cache.coalesced - before.cache.coalesced, 49, 'the others waited for it and hit');
});

test('/stats and /metrics count the cache', async () => {
  const s = await t.stats();
  for (const k of ['hits', 'misses', 'stale', 'revalidated', 'stored', 'evicted', 'bypass', 'coalesced', 'uncacheable', 'purged', 'lockTimeouts', 'errors', 'bytes', 'entries', 'hitRatio']) {
    assert.equal(typeof s.cache[k], 'number', `stats.cache.${k}`);
  }
  assert.ok(s.cache.hits > 0 && s.cache.misses > 0 && s.cache.entries > 0 && s.cache.bytes > 0);
  assert.equal(s.cache.hitRatio, Math.round((s.cache.hits / (s.cache.hits + s.cache.misses)) * 10_000) / 10_000);
  const { getJson } = await import('../support/http-client.ts');
  const metrics = (await getJson(`http://127.0.0.1:${t.lb.httpPort}/metrics`)).body as string;
  assert.match(metrics, /^quiclb_cache_enabled 1$/m);
  assert.match(metrics, new RegExp(`^quiclb_cache_hits_total ${(await t.stats()).cache.hits}$`, 'm'));
  assert.match(metrics, /^quiclb_cache_lock_timeouts_total \d+$/m);
  assert.match(metrics, /^quiclb_cache_bytes \d+$/m);
});

test('stale-if-error when no backend answers at all (every backend stopped)', { timeout: 60_000 }, async () => {
  const path = '/cache/resource.php?id=down&cc=public,max-age=1,stale-if-error=60';
  assert.equal(runOf((await curl(t.origin + path, { http: '1.1' })).body), 1);
  for (const b of t.php.backends) await b.stop();
  await sleep(1500);
  const served = await curl(t.origin + path, { http: '2' });
  assert.equal(served.status, 200);
  assert.equal(runOf(served.body), 1);
  const uncached = await curl(t.origin + '/cache/resource.php?id=down-nostale&cc=public,max-age=60', { http: '1.1' });
  assert.ok(uncached.status === 502 || uncached.status === 503, `status ${uncached.status}`);
});
