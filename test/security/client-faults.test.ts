// A failure that is the client's fault must never count against a backend, and what a client claims about
// itself (its address, its session) must not be taken on trust (see README.md here).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { request } from 'undici';
import { startLbWithRawBackends } from '../support/lb-with-raw-backends.ts';
import { OK_RESPONSE, rawExchange } from '../support/raw-backend.ts';
import { startPhpBackends } from '../support/php-backends.ts';
import { startQuiclb } from '../support/quiclb-process.ts';
import { getJson } from '../support/http-client.ts';

const statusOf = (text: string): number => Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0);

function curl(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn('curl', args);
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c) => (stdout += c));
    child.stderr.on('data', (c) => (stderr += c));
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

test('curl uploads over 1 MiB (Expect: 100-continue) all succeed and no backend is marked down (was: every backend down)', { timeout: 120_000 }, async () => {
  const php = await startPhpBackends(2);
  const lb = await startQuiclb({
    config: {
      loadBalancer: { sessionPersistence: false, backendServers: php.backends.map((b) => ({ id: b.id, host: b.host, port: b.port })) },
      healthCheck: { passiveFailureThreshold: 2 },
    },
  });
  try {
    const dir = await mkdtemp(path.join(tmpdir(), 'quiclb-upload-'));
    const file = path.join(dir, 'upload.bin');
    const data = randomBytes(2 * 1024 * 1024);
    await writeFile(file, data);
    const sha = createHash('sha256').update(data).digest('hex');
    for (let i = 0; i < 10; i++) {
      // curl adds "Expect: 100-continue" to bodies over 1 MiB and waits for the 100 before sending.
      const r = await curl(['-sv', '--data-binary', `@${file}`, `http://127.0.0.1:${lb.httpPort}/upload.php`]);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stderr, /> Expect: 100-continue/i);
      assert.match(r.stderr, /< HTTP\/1\.1 100 Continue/, 'quiclb answered the expectation itself');
      const body = JSON.parse(r.stdout) as { bytes: number; sha256: string };
      assert.equal(body.bytes, data.length);
      assert.equal(body.sha256, sha);
    }
    // Over TLS with HTTP/2 too.
    const h2 = await curl(['-sk', '--http2', '-H', 'Expect: 100-continue', '--data-binary', `@${file}`, `https://127.0.0.1:${lb.httpsPort}/upload.php`]);
    assert.equal(h2.code, 0, h2.stderr);
    assert.equal((JSON.parse(h2.stdout) as { sha256: string }).sha256, sha);
    const stats = (await getJson(`http://127.0.0.1:${lb.httpPort}/stats`)).body;
    for (const b of stats.backends) {
      assert.equal(b.healthy, true, `${b.id} healthy`);
      assert.equal(b.errors, 0, `${b.id} has no error counted`);
    }
    // Any other expectation is refused (RFC 9110 §10.1.1), without a backend.
    const r417 = await rawExchange(lb.httpPort, 'POST /upload.php HTTP/1.1\r\nHost: a\r\nExpect: something\r\nContent-Length: 1\r\n\r\nx');
    assert.equal(statusOf(r417.text), 417, r417.text);
  } finally {
    await lb.stop();
    await php.stop();
  }
});

test('a backend that sends an unsolicited 100 Continue before its answer is not a failure (RFC 9110 §15.2)', async () => {
  const env = await startLbWithRawBackends(1, {
    respond: () => `HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 102 Processing\r\n\r\n${OK_RESPONSE}`,
  });
  try {
    for (let i = 0; i < 5; i++) {
      const res = await request(`http://127.0.0.1:${env.lb.httpPort}/x${i}`, { method: i % 2 ? 'POST' : 'GET', body: i % 2 ? 'data' : undefined });
      assert.equal(res.statusCode, 200);
      assert.equal(await res.body.text(), 'ok');
    }
    await env.assertUnharmed();
  } finally {
    await env.stop();
  }
});

test('a truncated HTTP/1.1 upload reaches the backend as an aborted request, never as a complete one', async () => {
  const env = await startLbWithRawBackends(1, { respond: () => undefined });
  try {
    for (const framing of ['chunked', 'length'] as const) {
      const socket = net.connect(env.lb.httpPort, '127.0.0.1');
      await new Promise((r) => socket.once('connect', r));
      socket.on('error', () => undefined);
      const head =
        framing === 'chunked'
          ? 'POST /up HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n5\r\nworld\r\n'
          : 'POST /up HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\nhelloworld';
      socket.write(head);
      const seen = env.backends[0].requests.length;
      const deadline = Date.now() + 5000;
      while (Date.now() < deadline && (env.backends[0].requests.length === seen || env.backends[0].requests.at(-1)!.body.length < 10)) await sleep(20);
      const req = env.backends[0].requests.at(-1)!;
      assert.equal(req.body.toString(), 'helloworld');
      socket.destroy(); // the client goes away mid-body
      const until = Date.now() + 5000;
      while (Date.now() < until && !req.aborted) await sleep(20);
      assert.equal(req.aborted, true, `${framing}: the backend saw the connection cut`);
      assert.equal(req.complete, false, `${framing}: the request never looked complete`);
      const wire = env.backends[0].connections.at(-1)!.toString('latin1');
      assert.ok(!wire.includes('\r\n0\r\n\r\n'), `${framing}: no final chunk was sent`);
    }
    await env.assertUnharmed();
  } finally {
    await env.stop();
  }
});

test('client-supplied address fields never reach the backend; quiclb sets X-Real-IP and extends X-Forwarded-For', async () => {
  const env = await startLbWithRawBackends(1, {}, { moodle: { proxyHeaders: ['x-forwarded-for', 'x-forwarded-proto', 'x-real-ip'] } });
  try {
    const spoof = ['Client-IP: 6.6.6.6', 'X-Real-IP: 6.6.6.6', 'X-Client-IP: 6.6.6.6', 'True-Client-IP: 6.6.6.6', 'X-Cluster-Client-IP: 6.6.6.6', 'X-Forwarded-For: 6.6.6.6'];
    const r = await rawExchange(env.lb.httpPort, `GET / HTTP/1.1\r\nHost: a\r\n${spoof.join('\r\n')}\r\nConnection: close\r\n\r\n`);
    assert.equal(statusOf(r.text), 200);
    const headers = env.backends[0].requests.at(-1)!.headers;
    const get = (n: string) => headers.filter(([k]) => k === n).map(([, v]) => v);
    for (const n of ['client-ip', 'x-client-ip', 'true-client-ip', 'x-cluster-client-ip']) assert.deepEqual(get(n), [], n);
    assert.deepEqual(get('x-real-ip'), ['127.0.0.1']);
    // Moodle's getremoteaddr() takes the last address of the chain that is not a configured proxy.
    assert.deepEqual(get('x-forwarded-for'), ['6.6.6.6, 127.0.0.1']);
  } finally {
    await env.stop();
  }
});

test('the shared Moodle-session table only records session ids a backend issued', async () => {
  let n = 0;
  const env = await startLbWithRawBackends(2, {
    respond: (req) => {
      n++;
      // Only /login issues a session; everything else just answers.
      const issue = req.target === '/login' ? 'set-cookie: MoodleSession=issued-by-backend; Path=/\r\n' : '';
      return `HTTP/1.1 200 OK\r\n${issue}content-length: 2\r\n\r\nok`;
    },
  }, { loadBalancer: { sessionPersistence: true, strategy: 'round_robin' } });
  try {
    const hits = (cookie: string, count: number) =>
      (async () => {
        const per = env.backends.map((b) => b.requests.length);
        for (let i = 0; i < count; i++) {
          const res = await request(`http://127.0.0.1:${env.lb.httpPort}/page`, { headers: { cookie } });
          await res.body.text();
        }
        return env.backends.map((b, i) => b.requests.length - per[i]);
      })();
    // An invented id is not pinned: round robin keeps spreading it.
    const invented = await hits('MoodleSession=invented-by-client', 8);
    assert.ok(invented.every((c) => c > 0), `invented id spread over both backends: ${invented}`);
    // An id the backend issued is pinned to that backend.
    const login = await request(`http://127.0.0.1:${env.lb.httpPort}/login`);
    await login.body.text();
    const issued = await hits('MoodleSession=issued-by-backend', 8);
    assert.ok(issued.some((c) => c === 8), `issued id stays on one backend: ${issued}`);
    assert.ok(n > 0);
  } finally {
    await env.stop();
  }
});

test('with admin.port set, the public ports pass admin paths to the backends and the admin port serves admin paths only', async () => {
  const { freePort } = await import('../../bench/lib/procs.ts');
  const adminPort = await freePort();
  const env = await startLbWithRawBackends(1, {}, { admin: { port: adminPort } });
  try {
    const before = env.backends[0].requests.length;
    const pub = await rawExchange(env.lb.httpPort, 'GET /stats HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n');
    assert.equal(statusOf(pub.text), 200);
    assert.match(pub.text, /\r\n\r\nok$/, 'the backend answered /stats on the public port');
    assert.equal(env.backends[0].requests.length, before + 1);
    const stats = await getJson(`http://127.0.0.1:${adminPort}/stats`);
    assert.equal(stats.status, 200);
    assert.ok(Array.isArray(stats.body.backends));
    const other = await getJson(`http://127.0.0.1:${adminPort}/index.php`);
    assert.equal(other.status, 404);
  } finally {
    await env.stop();
  }
});
