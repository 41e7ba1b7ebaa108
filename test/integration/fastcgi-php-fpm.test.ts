// src/fastcgi against a real php-fpm 8.2 (two pools: unix socket and TCP), no web server in between.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { realpathSync } from 'node:fs';
import { Readable } from 'node:stream';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { FastCgiPool, type FastCgiPoolOptions } from '../../src/fastcgi/pool.ts';
import { buildParams } from '../../src/fastcgi/params.ts';
import { resolveScript } from '../../src/fastcgi/script.ts';
import { prepareFastCgiBody } from '../../src/fastcgi/spool.ts';
import type { FastCgiTarget } from '../../src/fastcgi/connection.ts';
import type { FrontRequest } from '../../src/shared/http-types.ts';
import { startPhpFpmPools, FASTCGI_FIXTURES_DIR, PHP_FIXTURES_DIR, type PhpFpmPools } from '../support/php-fpm-pools.ts';
import { expectedDownloadSha256 } from '../support/php-backends.ts';
import { exchange } from '../support/fastcgi-handler.ts';

/** A full GC before a memory baseline, also when node runs without --expose-gc (as `npm test` does). */
function forceGc(): void {
  setFlagsFromString('--expose-gc');
  (runInNewContext('gc') as () => void)();
}

let fpm: PhpFpmPools;
const pools: FastCgiPool[] = [];

before(async () => {
  fpm = await startPhpFpmPools({ unix: 4, tcp: 3 });
});
after(async () => {
  await Promise.all(pools.map((p) => p.destroy()));
  await fpm?.stop();
});

function pool(target: FastCgiTarget, opts: Partial<FastCgiPoolOptions> = {}): FastCgiPool {
  const p = new FastCgiPool({ target, ...opts });
  pools.push(p);
  return p;
}

const unix = (): FastCgiTarget => ({ socketPath: fpm.socketPath });
const tcp = (): FastCgiTarget => ({ host: fpm.host, port: fpm.port });

/** Params for a fixture script run directly (no resolver). */
function scriptParams(file: string, query = '', method = 'GET'): Array<[string, string]> {
  return [
    ['SCRIPT_FILENAME', file],
    ['SCRIPT_NAME', `/${file.split('/').at(-1)}`],
    ['REQUEST_METHOD', method],
    ['QUERY_STRING', query],
  ];
}

function frontRequest(init: Partial<FrontRequest> & { path: string }): FrontRequest {
  return {
    protocol: 'HTTP/1.1',
    method: 'GET',
    scheme: 'http',
    authority: 'moodle.example.test',
    headers: [['host', init.authority ?? 'moodle.example.test']],
    body: null,
    remoteAddress: '127.0.0.1',
    remotePort: 40000,
    localPort: 8080,
    connectionKey: 'c1',
    shard: 0,
    ...init,
  };
}

/** A deterministic body stream of `size` bytes in 64 KiB chunks, hashed as it is produced. */
function generatedBody(size: number): { stream: Readable; sha256: () => string } {
  const hash = createHash('sha256');
  const block = Buffer.alloc(65536);
  for (let i = 0; i < block.length; i++) block[i] = (i * 31 + 7) & 0xff;
  let sent = 0;
  let k = 0;
  const stream = new Readable({
    highWaterMark: 65536,
    read() {
      if (sent >= size) {
        this.push(null);
        return;
      }
      const n = Math.min(block.length, size - sent);
      const chunk = Buffer.from(block.subarray(0, n));
      if (n >= 4) chunk.writeUInt32BE(k++ >>> 0, 0); // a dropped or repeated chunk changes the hash
      sent += n;
      hash.update(chunk);
      this.push(chunk);
    },
  });
  return { stream, sha256: () => hash.digest('hex') };
}

describe('CGI parameters reach PHP as nginx would send them', () => {
  for (const [name, target] of [
    ['unix socket', unix],
    ['TCP', tcp],
  ] as const) {
    test(`Moodle slash arguments, HTTPS over HTTP/3, the real client, HTTP_* without HTTP_PROXY (${name})`, async () => {
      const root = FASTCGI_FIXTURES_DIR;
      const path = '/pluginfile.php/12/mod_resource/content/0/file%20name.pdf?forcedownload=1&x=%2F';
      const req = frontRequest({
        protocol: 'HTTP/3',
        scheme: 'https',
        authority: 'moodle.example.test',
        path,
        remoteAddress: '203.0.113.7',
        remotePort: 51234,
        localPort: 9443,
        headers: [
          ['host', 'moodle.example.test'],
          ['user-agent', 'curl/8'],
          ['cookie', 'MoodleSession=abc'],
          ['cookie', 'MOODLEID1_=x'],
          ['proxy', 'http://evil.example:3128'],
          ['x_forwarded_for', '6.6.6.6'],
          ['x-forwarded-for', '198.51.100.1'],
          ['accept', 'text/html'],
          ['accept', 'application/json'],
        ],
      });
      const script = await resolveScript(root, realpathSync(root), path, { deniedPaths: [] });
      assert.equal(script.kind, 'script');
      if (script.kind !== 'script') return;
      const o = await exchange(pool(target()), { params: buildParams(req, { documentRoot: root, script, contentLength: null }), body: null, contentLength: 0 });
      assert.equal(o.error, undefined);
      assert.equal(o.status, 200);
      const s = JSON.parse(o.body.toString()) as Record<string, string>;
      assert.equal(s.__script__, `${root}/pluginfile.php`);
      assert.equal(s.SCRIPT_FILENAME, `${root}/pluginfile.php`);
      assert.equal(s.SCRIPT_NAME, '/pluginfile.php');
      assert.equal(s.PATH_INFO, '/12/mod_resource/content/0/file name.pdf');
      assert.equal(s.PATH_TRANSLATED, `${root}/12/mod_resource/content/0/file name.pdf`);
      assert.equal(s.PHP_SELF, '/pluginfile.php/12/mod_resource/content/0/file name.pdf');
      assert.equal(s.REQUEST_URI, path);
      assert.equal(s.QUERY_STRING, 'forcedownload=1&x=%2F');
      assert.equal(s.REQUEST_METHOD, 'GET');
      assert.equal(s.HTTPS, 'on');
      assert.equal(s.REQUEST_SCHEME, 'https');
      assert.equal(s.SERVER_PROTOCOL, 'HTTP/3.0');
      assert.equal(s.SERVER_NAME, 'moodle.example.test');
      assert.equal(s.SERVER_PORT, '443');
      assert.equal(s.REMOTE_ADDR, '203.0.113.7');
      assert.equal(s.REMOTE_PORT, '51234');
      assert.equal(s.DOCUMENT_ROOT, root);
      assert.equal(s.GATEWAY_INTERFACE, 'CGI/1.1');
      assert.equal(s.SERVER_SOFTWARE, 'quiclb');
      assert.equal(s.HTTP_HOST, 'moodle.example.test');
      assert.equal(s.HTTP_USER_AGENT, 'curl/8');
      assert.equal(s.HTTP_COOKIE, 'MoodleSession=abc; MOODLEID1_=x');
      assert.equal(s.HTTP_ACCEPT, 'text/html, application/json');
      assert.equal(s.HTTP_X_FORWARDED_FOR, '198.51.100.1');
      assert.equal(s.HTTP_PROXY, undefined, 'httpoxy: no HTTP_PROXY');
      assert.equal(s.CONTENT_LENGTH ?? '', '');
      assert.deepEqual(o.events, ['start', 'response', 'data', 'end']);
    });
  }

  test('a directory request runs its index.php; plain HTTP has no HTTPS; an explicit port is SERVER_PORT', async () => {
    const root = FASTCGI_FIXTURES_DIR;
    const req = frontRequest({ path: '/sub/?a=1', authority: 'moodle.example.test:8080', headers: [['host', 'moodle.example.test:8080']] });
    const script = await resolveScript(root, realpathSync(root), req.path, { deniedPaths: [] });
    assert.equal(script.kind, 'script');
    if (script.kind !== 'script') return;
    const o = await exchange(pool(unix()), { params: buildParams(req, { documentRoot: root, script, contentLength: null }), body: null, contentLength: 0 });
    const s = JSON.parse(o.body.toString()) as Record<string, string>;
    assert.equal(s.__script__, `${root}/sub/index.php`);
    assert.equal(s.SCRIPT_NAME, '/sub/index.php');
    assert.equal(s.PATH_INFO, undefined);
    assert.equal(s.HTTPS, undefined);
    assert.equal(s.SERVER_PORT, '8080');
    assert.equal(s.SERVER_PROTOCOL, 'HTTP/1.1');
    assert.equal(s.QUERY_STRING, 'a=1');
  });
});

describe('request bodies stream to php-fpm as STDIN', () => {
  for (const [name, target] of [
    ['unix socket', unix],
    ['TCP', tcp],
  ] as const) {
    test(`sizes 0 B to 3 MiB arrive whole, checked by sha256 (${name})`, async () => {
      const p = pool(target());
      for (const size of [0, 1, 65535, 65536, 65537, 3 * 1024 * 1024 + 7]) {
        const body = generatedBody(size);
        const o = await exchange(p, { params: scriptParams(`${PHP_FIXTURES_DIR}/upload.php`, '', 'POST'), body: body.stream, contentLength: size });
        assert.equal(o.error, undefined, `size ${size}`);
        const r = JSON.parse(o.body.toString()) as { bytes: number; sha256: string };
        assert.equal(r.bytes, size);
        assert.equal(r.sha256, body.sha256(), `size ${size}`);
      }
      assert.equal(p.stats.connections, 1, 'each POST took the slot of the idle connection its predecessor left');
    });
  }

  test('200 MB through the pool with bounded memory (RSS growth well below the body size)', { timeout: 180_000 }, async (t) => {
    const size = 200 * 1024 * 1024;
    const body = generatedBody(size);
    forceGc();
    const base = process.memoryUsage().rss;
    let peak = base;
    const sampler = setInterval(() => {
      peak = Math.max(peak, process.memoryUsage().rss);
    }, 20);
    const o = await exchange(pool(unix()), { params: scriptParams(`${PHP_FIXTURES_DIR}/upload.php`, '', 'POST'), body: body.stream, contentLength: size });
    clearInterval(sampler);
    assert.equal(o.error, undefined);
    const r = JSON.parse(o.body.toString()) as { bytes: number; sha256: string };
    assert.equal(r.bytes, size);
    assert.equal(r.sha256, body.sha256());
    const growth = peak - base;
    t.diagnostic(`RSS growth ${(growth / 1048576).toFixed(1)} MiB for a 200 MiB body`);
    // Buffering the body whole would add at least 200 MiB. What remains is garbage: freed 64 KiB chunks live off
    // the V8 heap until a GC runs, measured at 5 to 55 MiB here depending on GC timing.
    assert.ok(growth < 100 * 1024 * 1024, `RSS grew by ${(growth / 1048576).toFixed(1)} MiB for a 200 MiB body`);
  });

  test('a body without a length (chunked / DATA without content-length) is spooled, then sent with CONTENT_LENGTH', async () => {
    const size = 5 * 1024 * 1024 + 3;
    const body = generatedBody(size);
    const req = frontRequest({ method: 'POST', path: '/upload.php', body: body.stream, headers: [['host', 'moodle.example.test'], ['transfer-encoding', 'chunked']] });
    const prepared = await prepareFastCgiBody(req, { maxBytes: 0 });
    assert.equal(prepared.spooled, true);
    assert.equal(prepared.contentLength, size);
    const o = await exchange(pool(tcp()), { params: scriptParams(`${PHP_FIXTURES_DIR}/upload.php`, '', 'POST'), body: prepared.body, contentLength: prepared.contentLength });
    await prepared.dispose();
    const r = JSON.parse(o.body.toString()) as { bytes: number; sha256: string };
    assert.equal(r.bytes, size);
    assert.equal(r.sha256, body.sha256());
  });

  test('a body that is shorter than contentLength fails with QUICLB_FCGI_REQUEST_BODY, never looks complete', async () => {
    const o = await exchange(pool(unix()), { params: scriptParams(`${PHP_FIXTURES_DIR}/upload.php`, '', 'POST'), body: Readable.from([Buffer.alloc(100)]), contentLength: 1000 });
    assert.equal(o.error?.code, 'QUICLB_FCGI_REQUEST_BODY');
    assert.deepEqual(o.events, ['start', 'error']);
  });

  test('a body stream that errors mid-way fails the request and closes the connection', async () => {
    const p = pool(unix());
    const stream = new Readable({ read() {} });
    stream.push(Buffer.alloc(1000));
    setTimeout(() => stream.destroy(new Error('client went away')), 50);
    const o = await exchange(p, { params: scriptParams(`${PHP_FIXTURES_DIR}/upload.php`, '', 'POST'), body: stream, contentLength: 5000 });
    assert.equal(o.error?.code, 'QUICLB_FCGI_REQUEST_BODY');
    assert.match(o.error?.message ?? '', /client went away/);
    assert.equal(p.stats.connections, 0);
  });
});

describe('responses', () => {
  test('Status: 404, Location -> 302, several Set-Cookie, Location with 201', async () => {
    const p = pool(unix());
    const file = `${FASTCGI_FIXTURES_DIR}/headers.php`;
    const status = await exchange(p, { params: scriptParams(file, 'case=status'), body: null, contentLength: 0 });
    assert.equal(status.status, 404);
    assert.equal(status.statusMessage, 'Not Found');
    assert.equal(status.body.toString(), 'missing\n');
    assert.equal(status.headers?.status, undefined);
    const loc = await exchange(p, { params: scriptParams(file, 'case=location'), body: null, contentLength: 0 });
    assert.equal(loc.status, 302);
    assert.equal(loc.headers?.location, 'https://moodle.example.test/login/index.php');
    const created = await exchange(p, { params: scriptParams(file, 'case=created'), body: null, contentLength: 0 });
    assert.equal(created.status, 201);
    const cookies = await exchange(p, { params: scriptParams(file, 'case=cookies'), body: null, contentLength: 0 });
    assert.deepEqual(cookies.headers?.['set-cookie'], ['MoodleSession=abc123; path=/; HttpOnly', 'MOODLEID1_=x%2520y; path=/', 'third=3; Path=/']);
    const raw = cookies.rawHeaders as string[];
    assert.equal(raw.filter((v, i) => i % 2 === 0 && v === 'set-cookie').length, 3);
  });

  test('STDERR goes to the callback, never into the response', async () => {
    const lines: string[] = [];
    const p = pool(tcp(), { onStderr: (t) => lines.push(t) });
    const o = await exchange(p, { params: scriptParams(`${FASTCGI_FIXTURES_DIR}/stderr.php`, 'msg=secret-detail'), body: null, contentLength: 0 });
    assert.equal(o.body.toString(), 'logged\n');
    assert.ok(lines.some((l) => l.includes('quiclb-stderr: secret-detail')), JSON.stringify(lines));
    // A per-request callback wins over the pool's.
    const mine: string[] = [];
    await exchange(p, { params: scriptParams(`${FASTCGI_FIXTURES_DIR}/stderr.php`, 'msg=two'), body: null, contentLength: 0, onStderr: (t) => mine.push(t) });
    assert.ok(mine.some((l) => l.includes('quiclb-stderr: two')));
  });

  test('a 20 MB download streams with backpressure: nothing is delivered while paused', { timeout: 60_000 }, async () => {
    const bytes = 20 * 1024 * 1024;
    const hash = createHash('sha256');
    let paused = false;
    let deliveredWhilePaused = 0;
    let pauses = 0;
    const o = await exchange(pool(unix()), { params: scriptParams(`${PHP_FIXTURES_DIR}/download.php`, `bytes=${bytes}&seed=7`), body: null, contentLength: 0 }, {
      discard: true,
      onData(c, chunk, out) {
        if (paused) deliveredWhilePaused += chunk.length;
        hash.update(chunk);
        // Pause three times, early in the body, as a slow client would.
        if (pauses < 3 && out.bytes > pauses * 4 * 1024 * 1024 + 1) {
          pauses++;
          c.pause();
          paused = true;
          setTimeout(() => {
            paused = false;
            c.resume();
          }, 150);
        }
      },
    });
    assert.equal(o.error, undefined);
    assert.equal(o.bytes, bytes);
    assert.equal(pauses, 3);
    assert.equal(deliveredWhilePaused, 0);
    assert.equal(hash.digest('hex'), expectedDownloadSha256(bytes, 7));
  });

  test('php-fpm child killed mid-response: onResponseError (ECONNRESET), never onResponseEnd', async () => {
    const p = pool(unix());
    let head = '';
    let killed = false;
    const o = await exchange(p, { params: scriptParams(`${FASTCGI_FIXTURES_DIR}/die-midway.php`), body: null, contentLength: 0 }, {
      onData(_c, chunk, out) {
        if (head.length < 64) head += chunk.toString('latin1', 0, 64);
        const m = /pid=(\d+)\n/.exec(head);
        // Kill once the body is flowing: the child is sleeping with 100 KB sent.
        if (!killed && m !== null && out.bytes >= 50_000) {
          killed = true;
          process.kill(Number(m[1]), 'SIGKILL');
        }
      },
    });
    assert.ok(killed, 'the child was killed mid-response');
    assert.equal(o.status, 200);
    assert.equal(o.error?.code, 'ECONNRESET');
    assert.deepEqual(o.events, ['start', 'response', 'data', 'error']);
    assert.equal(p.stats.connections, 0, 'the broken connection is not kept');
  });
});

describe('pool limits, queueing, errors the proxy classifies', () => {
  const slow = (ms: number) => scriptParams(`${PHP_FIXTURES_DIR}/slow.php`, `ms=${ms}`);

  test('maxConnections bounds the sockets; a full pool queues and times out with QUICLB_FCGI_QUEUE_TIMEOUT', async () => {
    const p = pool(tcp(), { maxConnections: 2, queueTimeoutMs: 300 });
    let maxSeen = 0;
    const watch = setInterval(() => (maxSeen = Math.max(maxSeen, p.stats.connections)), 5);
    const runs = [exchange(p, { params: slow(1200), body: null, contentLength: 0 }), exchange(p, { params: slow(1200), body: null, contentLength: 0 })];
    await new Promise((r) => setTimeout(r, 50));
    const started = Date.now();
    const third = await exchange(p, { params: slow(10), body: null, contentLength: 0 });
    const waited = Date.now() - started;
    const [a, b] = await Promise.all(runs);
    clearInterval(watch);
    assert.equal(third.error?.code, 'QUICLB_FCGI_QUEUE_TIMEOUT');
    assert.match(third.error?.message ?? '', /raise maxConnections/);
    assert.deepEqual(third.events, ['start', 'error']);
    assert.ok(waited >= 290, `failed after ${waited} ms, not at the queue timeout`);
    assert.equal(a.status, 200);
    assert.equal(b.status, 200);
    assert.equal(maxSeen, 2);
    assert.equal(p.stats.queued, 0);
  });

  test('a queued request gets the next free connection (kept alive, reused)', async () => {
    const p = pool(unix(), { maxConnections: 1, queueTimeoutMs: 10_000 });
    const results = await Promise.all([0, 1, 2].map(() => exchange(p, { params: slow(100), body: null, contentLength: 0 })));
    assert.deepEqual(results.map((r) => r.status), [200, 200, 200]);
    assert.deepEqual(p.stats, { connections: 1, busy: 0, idle: 1, connecting: 0, queued: 0 });
  });

  test('maxQueue bounds the queue (QUICLB_FCGI_QUEUE_FULL)', async () => {
    const p = pool(unix(), { maxConnections: 1, maxQueue: 1 });
    const first = exchange(p, { params: slow(300), body: null, contentLength: 0 });
    const second = exchange(p, { params: slow(10), body: null, contentLength: 0 });
    const third = await exchange(p, { params: slow(10), body: null, contentLength: 0 });
    assert.equal(third.error?.code, 'QUICLB_FCGI_QUEUE_FULL');
    assert.equal((await first).status, 200);
    assert.equal((await second).status, 200);
  });

  test('refused: no listener on the TCP port, a missing socket file, a stale socket file -> ECONNREFUSED', async () => {
    const { freePort } = await import('../../bench/lib/procs.ts');
    const port = await freePort();
    const o1 = await exchange(pool({ host: '127.0.0.1', port }), { params: slow(1), body: null, contentLength: 0 });
    assert.equal(o1.error?.code, 'ECONNREFUSED');
    assert.deepEqual(o1.events, ['start', 'error']);
    const o2 = await exchange(pool({ socketPath: `${fpm.dir}/no-such.sock` }), { params: slow(1), body: null, contentLength: 0 });
    assert.equal(o2.error?.code, 'ECONNREFUSED');
    assert.match(o2.error?.message ?? '', /does not exist/);
    // A socket file nobody listens on (php-fpm died without removing it).
    const { createServer } = await import('node:net');
    const stale = `${fpm.dir}/stale.sock`;
    const server = createServer();
    await new Promise<void>((r) => server.listen(stale, r));
    // Closing a unix server removes its file; a file left by a killed process is simulated by binding without listening.
    server.close();
    const { execFileSync } = await import('node:child_process');
    execFileSync('python3', ['-c', `import socket; s=socket.socket(socket.AF_UNIX); s.bind(${JSON.stringify(stale)})`]);
    const o3 = await exchange(pool({ socketPath: stale }), { params: slow(1), body: null, contentLength: 0 });
    assert.equal(o3.error?.code, 'ECONNREFUSED');
  });

  test('no headers within headersTimeoutMs -> QUICLB_FCGI_HEADERS_TIMEOUT; the connection is not reused', async () => {
    const p = pool(unix(), { headersTimeoutMs: 200 });
    const o = await exchange(p, { params: slow(1500), body: null, contentLength: 0 });
    assert.equal(o.error?.code, 'QUICLB_FCGI_HEADERS_TIMEOUT');
    assert.equal(p.stats.connections, 0);
  });

  test('abort mid-response: onResponseError with the reason, the connection closes', async () => {
    const p = pool(unix());
    const reason = new Error('client went away');
    const o = await exchange(p, { params: scriptParams(`${PHP_FIXTURES_DIR}/download.php`, 'bytes=10000000'), body: null, contentLength: 0 }, {
      discard: true,
      onData(c, _chunk, out) {
        if (out.bytes > 100_000) c.abort(reason);
      },
    });
    assert.equal(o.error, reason);
    assert.equal(o.events.at(-1), 'error');
    assert.ok(!o.events.includes('end'));
    assert.equal(p.stats.connections, 0);
  });

  test('an AbortSignal aborts a queued request', async () => {
    const p = pool(unix(), { maxConnections: 1 });
    const busy = exchange(p, { params: slow(300), body: null, contentLength: 0 });
    const ac = new AbortController();
    const queued = exchange(p, { params: slow(1), body: null, contentLength: 0, signal: ac.signal });
    await new Promise((r) => setTimeout(r, 30));
    assert.equal(p.stats.queued, 1);
    ac.abort();
    const o = await queued;
    assert.equal(o.error?.name, 'AbortError');
    assert.equal(p.stats.queued, 0);
    assert.equal((await busy).status, 200);
  });

  test('children that exit after each request (pm.max_requests = 1): queued POSTs with bodies all succeed', async () => {
    const p = pool({ socketPath: fpm.recycleSocketPath }, { maxConnections: 1 });
    const bodies = Array.from({ length: 8 }, () => generatedBody(100_000));
    const results = await Promise.all(
      bodies.map((b) => exchange(p, { params: scriptParams(`${PHP_FIXTURES_DIR}/upload.php`, '', 'POST'), body: b.stream, contentLength: 100_000 })),
    );
    assert.deepEqual(results.map((r) => r.error?.code), bodies.map(() => undefined));
    assert.deepEqual(results.map((r) => (JSON.parse(r.body.toString()) as { sha256: string }).sha256), bodies.map((b) => b.sha256()));
  });

  test('a kept connection php-fpm closed while idle is replaced without failing the request', async () => {
    const p = pool(unix(), { maxConnections: 1, idleTimeoutMs: 60_000 });
    const first = await exchange(p, { params: slow(1), body: null, contentLength: 0 });
    assert.equal(first.status, 200);
    assert.equal(p.stats.idle, 1);
    // Restart every php-fpm child (SIGUSR2 reloads workers): each kept connection is closed from php-fpm's side.
    const pid = Number((await import('node:fs')).readFileSync(`${fpm.dir}/php-fpm.pid`, 'utf8'));
    process.kill(pid, 'SIGUSR2');
    await new Promise((r) => setTimeout(r, 500));
    const second = await exchange(p, { params: slow(1), body: null, contentLength: 0 });
    assert.equal(second.error, undefined);
    assert.equal(second.status, 200);
  });
});

describe('fastCgiFetch (active health checks of FastCGI backends)', () => {
  test('GET /admin/cli/healthcheck.php through the pool: status, JSON body, a body cap; errors typed', async () => {
    const { fastCgiFetch } = await import('../../src/fastcgi/fetch.ts');
    const root = PHP_FIXTURES_DIR;
    const p = pool(unix());
    const opts = { documentRoot: root, realRoot: realpathSync(root), path: '/admin/cli/healthcheck.php', timeoutMs: 5000, maxBodyBytes: 65536 };
    const ok = await fastCgiFetch(p, opts);
    assert.equal(ok.status, 200);
    assert.equal((JSON.parse(ok.body.toString()) as { status: string }).status, 'healthy');
    assert.ok(ok.headers.some(([n, v]) => n === 'content-type' && v === 'application/json'));
    const capped = await fastCgiFetch(p, { ...opts, path: '/download.php?bytes=100000', maxBodyBytes: 1000 });
    assert.equal(capped.body.length, 1000);
    assert.equal(capped.truncated, true);
    await assert.rejects(fastCgiFetch(p, { ...opts, path: '/admin/cli/missing.php' }), (e: Error & { code?: string }) => e.code === 'QUICLB_FCGI_NO_SCRIPT');
    await assert.rejects(fastCgiFetch(p, { ...opts, path: '/slow.php?ms=2000', timeoutMs: 200 }), (e: Error & { code?: string }) => e.code === 'ETIMEDOUT');
    const refused = new FastCgiPool({ target: { socketPath: `${fpm.dir}/none.sock` } });
    await assert.rejects(fastCgiFetch(refused, opts), (e: Error & { code?: string }) => e.code === 'ECONNREFUSED');
  });
});
