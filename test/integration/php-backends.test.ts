// The test backends themselves: real nginx + php-fpm, checked with undici before other tests rely on them.

import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { Agent, request } from 'undici';
import { expectedDownloadSha256, startPhpBackends, type PhpBackendSet } from '../support/php-backends.ts';

const MiB = 1024 * 1024;

describe('php backends (nginx + php-fpm)', { timeout: 60_000 }, () => {
  let set: PhpBackendSet;
  let agent: Agent;

  before(async () => {
    const t0 = performance.now();
    set = await startPhpBackends(2);
    const ms = performance.now() - t0;
    assert.ok(ms < 3000, `start-up took ${Math.round(ms)} ms`);
    agent = new Agent({ keepAliveTimeout: 1000 });
  });

  after(async () => {
    await agent?.close();
    await set?.stop();
  });

  async function get(origin: string, path: string, headers: Record<string, string> = {}) {
    const res = await request(origin + path, { dispatcher: agent, headers });
    const text = await res.body.text();
    return { status: res.statusCode, headers: res.headers, text, json: () => JSON.parse(text) };
  }

  test('each backend answers with its own BACKEND_ID and echoes proxy headers', async () => {
    const [a, b] = set.backends;
    assert.notEqual(a.port, b.port);
    const ra = await get(a.origin, '/index.php?x=1', { 'x-forwarded-for': '203.0.113.7', forwarded: 'for=203.0.113.7;proto=https', 'x-other': 'no' });
    const rb = await get(b.origin, '/course/view.php?id=2');
    assert.equal(ra.status, 200);
    assert.equal(rb.status, 200);
    const ja = ra.json();
    const jb = rb.json();
    assert.equal(ja.backend, a.id);
    assert.equal(jb.backend, b.id);
    assert.notEqual(ja.backend, jb.backend);
    assert.equal(ja.method, 'GET');
    assert.equal(ja.uri, '/index.php?x=1');
    assert.equal(jb.uri, '/course/view.php?id=2');
    assert.equal(ja.remote_addr, '127.0.0.1');
    assert.deepEqual(ja.headers, { 'x-forwarded-for': '203.0.113.7', forwarded: 'for=203.0.113.7;proto=https' });
  });

  test('file sessions stick to their backend and do not carry over', async () => {
    const [a, b] = set.backends;
    const first = await get(a.origin, '/session.php');
    const setCookie = String(first.headers['set-cookie'] ?? '');
    const match = /MoodleSession=([^;]+)/.exec(setCookie);
    assert.ok(match, `expected a MoodleSession cookie, got ${setCookie}`);
    const cookie = `MoodleSession=${match[1]}`;
    assert.deepEqual(first.json(), { backend: a.id, count: 1, session_id: match[1] });

    const second = (await get(a.origin, '/session.php', { cookie })).json();
    assert.deepEqual(second, { backend: a.id, count: 2, session_id: match[1] });

    // The other backend has its own store: the session is lost there (strict mode issues a new id).
    const elsewhere = (await get(b.origin, '/session.php', { cookie })).json();
    assert.equal(elsewhere.backend, b.id);
    assert.equal(elsewhere.count, 1);
    assert.notEqual(elsewhere.session_id, match[1]);

    const third = (await get(a.origin, '/session.php', { cookie })).json();
    assert.equal(third.count, 3);
  });

  test('healthcheck flips to 503 and back, per backend', async () => {
    const [a, b] = set.backends;
    const path = '/admin/cli/healthcheck.php';
    assert.equal((await get(a.origin, path)).status, 200);
    await a.setHealthy(false);
    const down = await get(a.origin, path);
    assert.equal(down.status, 503);
    assert.equal(down.json().status, 'unhealthy');
    assert.equal((await get(b.origin, path)).status, 200, 'the other backend stays healthy');
    assert.equal((await get(a.origin, '/index.php')).status, 200, 'an unhealthy backend still serves');
    await a.setHealthy(true);
    const up = await get(a.origin, path);
    assert.equal(up.status, 200);
    assert.equal(up.json().status, 'healthy');
  });

  test('a 20 MiB upload arrives intact', async () => {
    const body = randomBytes(20 * MiB);
    const expected = createHash('sha256').update(body).digest('hex');
    async function* chunks() {
      for (let off = 0; off < body.length; off += MiB) yield body.subarray(off, off + MiB);
    }
    const res = await request(set.backends[1].origin + '/upload.php', {
      dispatcher: agent,
      method: 'POST',
      headers: { 'content-type': 'application/octet-stream', 'content-length': String(body.length) },
      body: Readable.from(chunks()),
    });
    const json = (await res.body.json()) as { bytes: number; sha256: string; backend: string };
    assert.equal(res.statusCode, 200);
    assert.equal(json.backend, set.backends[1].id);
    assert.equal(json.bytes, body.length);
    assert.equal(json.sha256, expected);
  });

  test('downloads match expectedDownloadSha256', async () => {
    const bytes = 5 * MiB + 12_345; // not a whole number of 64 KiB blocks
    const res = await request(`${set.backends[0].origin}/download.php?bytes=${bytes}&seed=quiclb`, { dispatcher: agent });
    assert.equal(res.statusCode, 200);
    assert.equal(res.headers['content-length'], String(bytes));
    const hash = createHash('sha256');
    let got = 0;
    for await (const chunk of res.body) {
      hash.update(chunk as Buffer);
      got += (chunk as Buffer).length;
    }
    assert.equal(got, bytes);
    const sha = hash.digest('hex');
    assert.equal(sha, expectedDownloadSha256(bytes, 'quiclb'));
    assert.notEqual(sha, expectedDownloadSha256(bytes, 'other'));

    const tiny = await request(`${set.backends[0].origin}/download.php?bytes=5&seed=s`, { dispatcher: agent });
    const tinyBody = Buffer.from(await tiny.body.arrayBuffer());
    assert.equal(tinyBody.length, 5);
    assert.equal(createHash('sha256').update(tinyBody).digest('hex'), expectedDownloadSha256(5, 's'));
  });

  test('status.php and slow.php answer as asked', async () => {
    const origin = set.backends[0].origin;
    assert.equal((await get(origin, '/status.php?code=502')).status, 502);
    assert.equal((await get(origin, '/status.php?code=204')).status, 204);
    const t0 = performance.now();
    const slow = await get(origin, '/slow.php?ms=300');
    assert.equal(slow.status, 200);
    assert.ok(performance.now() - t0 >= 290, 'slow.php answered too early');
  });

  test('stop() makes a backend refuse connections and start() brings it back', async () => {
    const [a, b] = set.backends;
    const first = await get(b.origin, '/session.php');
    const cookie = String(first.headers['set-cookie']).split(';')[0];

    await b.stop();
    assert.equal(b.running, false);
    const fresh = new Agent();
    await assert.rejects(request(b.origin + '/index.php', { dispatcher: fresh }), (err: NodeJS.ErrnoException) => {
      assert.equal(err.code, 'ECONNREFUSED');
      return true;
    });
    await fresh.close();
    assert.equal((await get(a.origin, '/index.php')).json().backend, a.id, 'the other backend keeps serving');

    await b.start();
    assert.equal(b.running, true);
    const back = await get(b.origin, '/index.php');
    assert.equal(back.json().backend, b.id);
    // Same port, same session store: the session survives a restart of the backend's web server.
    assert.equal((await get(b.origin, '/session.php', { cookie })).json().count, 2);
  });
});
