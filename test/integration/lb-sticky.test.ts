// Session persistence against real nginx + php-fpm backends whose PHP file sessions live on one backend
// only: a request routed to the wrong backend would restart the session counter at 1.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startPhpBackends } from '../support/php-backends.ts';
import type { PhpBackendSet } from '../support/php-backends.ts';
import { startQuiclb } from '../support/quiclb-process.ts';
import type { QuiclbProcess } from '../support/quiclb-process.ts';
import { CookieJar, getJson, insecureAgent, execFileP } from '../support/http-client.ts';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';

let php: PhpBackendSet;
let lb: QuiclbProcess;

function backendsConfig(set: PhpBackendSet) {
  return set.backends.map((b) => ({ id: b.id, host: b.host, port: b.port }));
}

before(async () => {
  php = await startPhpBackends(3);
  lb = await startQuiclb({ config: { loadBalancer: { strategy: 'round_robin', backendServers: backendsConfig(php) } }, workers: 2 });
});

after(async () => {
  await lb?.stop();
  await php?.stop();
});

test('20 clients x 100 requests each stay on their backend and keep their PHP session (HTTP/1.1, undici)', async () => {
  const clients = Array.from({ length: 20 }, () => new CookieJar());
  const seen = new Map<CookieJar, Set<string>>();
  await Promise.all(
    clients.map(async (jar) => {
      const backends = new Set<string>();
      for (let i = 1; i <= 100; i++) {
        const res = await getJson(`http://127.0.0.1:${lb.httpPort}/session.php`, { jar });
        assert.equal(res.status, 200);
        assert.equal(res.body.count, i, `session lost on request ${i} (backend ${res.body.backend})`);
        backends.add(res.body.backend);
      }
      seen.set(jar, backends);
    }),
  );
  for (const backends of seen.values()) assert.equal(backends.size, 1);
  // Round robin spread the new clients over all three backends.
  const used = new Set([...seen.values()].map((s) => [...s][0]));
  assert.equal(used.size, 3);
});

test('stickiness holds over HTTP/2 with curl and a cookie file', async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'quiclb-curl-'));
  for (let client = 0; client < 5; client++) {
    const jar = path.join(dir, `jar-${client}.txt`);
    let backend: string | undefined;
    for (let i = 1; i <= 20; i++) {
      const { stdout } = await execFileP('curl', ['-sk', '--http2', '-c', jar, '-b', jar, '-w', '\n%{http_version}', `https://127.0.0.1:${lb.httpsPort}/session.php`]);
      const cut = stdout.lastIndexOf('\n');
      const body = stdout.slice(0, cut);
      const version = stdout.slice(cut + 1);
      assert.equal(version, '2');
      const json = JSON.parse(body);
      assert.equal(json.count, i);
      backend ??= json.backend;
      assert.equal(json.backend, backend);
    }
  }
});

test('the affinity cookie is HttpOnly, and Secure on TLS', async () => {
  const plain = await getJson(`http://127.0.0.1:${lb.httpPort}/index.php`);
  const tls = await getJson(`https://127.0.0.1:${lb.httpsPort}/index.php`, { dispatcher: insecureAgent });
  const find = (h: string | string[] | undefined) => [h ?? []].flat().find((c) => c.startsWith('QUICLB_AFFINITY='));
  const p = find(plain.headers['set-cookie']);
  const s = find(tls.headers['set-cookie']);
  assert.ok(p && /HttpOnly/i.test(p), `plain cookie: ${p}`);
  assert.ok(s && /HttpOnly/i.test(s) && /Secure/i.test(s), `tls cookie: ${s}`);
});

test('the Moodle session cookie alone keeps a client on its backend (affinity cookie dropped)', async () => {
  const jar = new CookieJar();
  const first = await getJson(`http://127.0.0.1:${lb.httpPort}/session.php`, { jar });
  const session = jar.get('MoodleSession');
  assert.ok(session);
  for (let i = 2; i <= 30; i++) {
    // Only the Moodle cookie, as a client that refuses quiclb's cookie would send.
    const res: { body: any } = await getJson(`http://127.0.0.1:${lb.httpPort}/session.php`, { headers: { cookie: `MoodleSession=${session}` } });
    assert.equal(res.body.backend, first.body.backend);
    assert.equal(res.body.count, i);
  }
});

test('stickiness survives a quiclb restart (affinity cookie is stable)', async () => {
  const jar = new CookieJar();
  const first = await getJson(`http://127.0.0.1:${lb.httpPort}/session.php`, { jar });
  const config = { loadBalancer: { strategy: 'round_robin', backendServers: backendsConfig(php) } };
  const second = await startQuiclb({ config, workers: 1 });
  try {
    for (let i = 2; i <= 10; i++) {
      const res = await getJson(`http://127.0.0.1:${second.httpPort}/session.php`, { jar });
      assert.equal(res.body.backend, first.body.backend);
      assert.equal(res.body.count, i);
    }
  } finally {
    await second.stop();
  }
});
