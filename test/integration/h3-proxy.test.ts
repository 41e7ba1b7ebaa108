// HTTP/3 end to end through the real quiclb binary to real nginx + php-fpm backends, driven by clients
// nobody here wrote: gtlsclient (ngtcp2) and headless Chromium.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { createHash, randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { startPhpBackends, expectedDownloadSha256 } from '../support/php-backends.ts';
import type { PhpBackendSet } from '../support/php-backends.ts';
import { startQuiclb } from '../support/quiclb-process.ts';
import type { QuiclbProcess } from '../support/quiclb-process.ts';
import { gtlsclient, chromiumFetch } from '../support/quic-harness.ts';
import { spkiHash } from '../../src/shared/tls-material.ts';
import { getJson } from '../support/http-client.ts';

let php: PhpBackendSet;
let lb: QuiclbProcess;

before(async () => {
  php = await startPhpBackends(2);
  const backendServers = php.backends.map((b) => ({ id: b.id, host: b.host, port: b.port }));
  lb = await startQuiclb({ config: { loadBalancer: { backendServers } }, workers: 2 });
});

after(async () => {
  await lb?.stop();
  await php?.stop();
});

const stats = async () => (await getJson(`http://127.0.0.1:${lb.httpPort}/stats`)).body;

/** Chromium's netlog names event types by number; map them back. */
function netlogEvents(netlog: string): Array<{ type: string | undefined; params?: Record<string, unknown> }> {
  const log = JSON.parse(netlog) as { constants: { logEventTypes: Record<string, number> }; events: Array<{ type: number; params?: Record<string, unknown> }> };
  const name = new Map(Object.entries(log.constants.logEventTypes).map(([k, v]) => [v, k]));
  return log.events.map((e) => ({ type: name.get(e.type), params: e.params }));
}

test('gtlsclient fetches a PHP page through quiclb over HTTP/3, with the proxy headers set', async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'quiclb-h3-'));
  const res = await gtlsclient(lb.httpsPort, ['/index.php'], [`--download=${dir}`]);
  assert.equal(res.code, 0, res.stderr.slice(-2000));
  const body = JSON.parse(await readFile(path.join(dir, 'index.php'), 'utf8'));
  assert.ok(php.backends.some((b) => b.id === body.backend));
  assert.equal(body.headers['x-forwarded-proto'], 'https');
  assert.equal(body.headers['x-forwarded-for'], '127.0.0.1');
  assert.ok((await stats()).protocols['HTTP/3'] >= 1);
});

test('several streams at once, and a 16 MiB download whose bytes match', { timeout: 60_000 }, async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'quiclb-h3-'));
  const size = 16 * 1024 * 1024;
  const res = await gtlsclient(lb.httpsPort, [`/download.php?bytes=${size}&seed=3`], [`--download=${dir}`, '-n', '4'], 45_000);
  assert.equal(res.code, 0, res.stderr.slice(-2000));
  const bytes = await readFile(path.join(dir, `download.php?bytes=${size}&seed=3`));
  assert.equal(bytes.length, size);
  assert.equal(createHash('sha256').update(bytes).digest('hex'), expectedDownloadSha256(size, 3));
});

test('an upload over HTTP/3 reaches the backend intact', { timeout: 60_000 }, async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'quiclb-h3-'));
  const payload = randomBytes(4 * 1024 * 1024);
  const file = path.join(dir, 'payload.bin');
  await writeFile(file, payload);
  const res = await gtlsclient(lb.httpsPort, ['/upload.php'], [`--download=${dir}`, `--data=${file}`], 45_000);
  assert.equal(res.code, 0, res.stderr.slice(-2000));
  const body = JSON.parse(await readFile(path.join(dir, 'upload.php'), 'utf8'));
  assert.equal(body.bytes, payload.length);
  assert.equal(body.sha256, createHash('sha256').update(payload).digest('hex'));
});

test('connection migration: --change-local-addr completes through the proxy and is counted', { timeout: 60_000 }, async () => {
  const before = (await stats()).quic;
  const dir = await mkdtemp(path.join(tmpdir(), 'quiclb-h3-'));
  const size = 4 * 1024 * 1024;
  // The client moves to a new address (and CID) while the first request waits on the backend; that
  // request and a 4 MiB download after it complete on the same connection.
  const migrate = await gtlsclient(
    lb.httpsPort,
    ['/slow.php?ms=500', `/download.php?bytes=${size}&seed=5`],
    [`--download=${dir}`, '--change-local-addr=100ms', '-n', '2', '--delay-stream=700ms'],
    45_000,
  );
  assert.equal(migrate.code, 0, migrate.stderr.slice(-2000));
  assert.equal((await readFile(path.join(dir, `download.php?bytes=${size}&seed=5`))).length, size);
  const mid = (await stats()).quic;
  assert.ok(mid.migrations >= before.migrations + 1, JSON.stringify(mid));
  const metrics = (await getJson(`http://127.0.0.1:${lb.httpPort}/metrics`)).body as string;
  assert.match(metrics, /quiclb_quic_migrations_total [1-9]/);
});

test('NAT rebinding in the middle of 4 MiB uploads to PHP: every upload completes intact, counted', { timeout: 90_000 }, async (t) => {
  // gtlsclient moves to a new port (same CID) 20 ms in, while flow control paces the upload. A credit
  // update (MAX_STREAM_DATA) that left for the old port just before is lost; before the old-path drain in
  // src/quic/endpoint.ts, quiche never resent it and the upload hung until the idle timeout. A 256 KiB
  // stream window makes credit updates frequent: without the drain, 5 of 20 runs hung (1 MiB: ~1 in 30).
  const small = await startQuiclb({
    config: { loadBalancer: { backendServers: php.backends.map((b) => ({ id: b.id, host: b.host, port: b.port })) }, quic: { initialMaxStreamData: '256KiB' } },
    workers: 2,
  });
  t.after(() => small.stop());
  const smallStats = async () => (await getJson(`http://127.0.0.1:${small.httpPort}/stats`)).body;
  const before = (await smallStats()).quic;
  const dir = await mkdtemp(path.join(tmpdir(), 'quiclb-h3-'));
  const payload = path.join(dir, 'payload.bin');
  const bytes = randomBytes(4 * 1024 * 1024);
  await writeFile(payload, bytes);
  const sha256 = createHash('sha256').update(bytes).digest('hex');
  const RUNS = 8;
  for (let i = 0; i < RUNS; i++) {
    const out = path.join(dir, `run${i}`);
    await mkdir(out);
    const r = await gtlsclient(small.httpsPort, ['/upload.php'], [`--download=${out}`, `--data=${payload}`, '--change-local-addr=20ms', '--nat-rebinding', '--timeout=5s'], 30_000);
    assert.equal(r.code, 0, r.stderr.slice(-2000));
    const body = await readFile(path.join(out, 'upload.php'), 'utf8');
    assert.ok(body.length > 0, `run ${i}: the upload finished with an answer (gtlsclient exits 0 on an idle timeout)`);
    assert.equal(JSON.parse(body).sha256, sha256, `run ${i}`);
  }
  const after = (await smallStats()).quic;
  assert.ok(after.natRebindings >= before.natRebindings + RUNS, JSON.stringify(after));
  const metrics = (await getJson(`http://127.0.0.1:${small.httpPort}/metrics`)).body as string;
  assert.match(metrics, /quiclb_quic_nat_rebindings_total [1-9]/);
});

test('--key-update completes', async () => {
  const res = await gtlsclient(lb.httpsPort, ['/index.php'], ['--key-update=10ms']);
  assert.equal(res.code, 0, res.stderr.slice(-2000));
});

test('headless Chromium loads a page over HTTP/3 (protocol from its netlog)', { timeout: 60_000 }, async () => {
  const spki = spkiHash(await readFile(path.join(lb.stateDir, 'selfsigned-cert.pem')));
  const { dom, netlog } = await chromiumFetch(lb.httpsPort, spki, '/index.php');
  assert.match(dom, /"backend":"backend-\d"/);
  const events = netlogEvents(netlog);
  assert.ok(events.some((e) => e.type === 'HTTP3_HEADERS_RECEIVED' && e.params?.stream_id === 0), 'response headers arrived over HTTP/3');
});

test('sticky sessions over HTTP/3: Chromium keeps its PHP session on one backend across requests', { timeout: 60_000 }, async () => {
  // sticky.html fetches session.php five times with the browser's cookie jar (affinity + MoodleSession);
  // --virtual-time-budget lets the page's script finish before the DOM is dumped. PHP answers chunked,
  // so the end of each response often comes after its body left: this also guards the FIN fix in
  // src/quic/h3-frontend.ts (before it, about one run in three hung here).
  const spki = spkiHash(await readFile(path.join(lb.stateDir, 'selfsigned-cert.pem')));
  const { dom, netlog } = await chromiumFetch(lb.httpsPort, spki, '/sticky.html', 40_000, ['--virtual-time-budget=10000']);
  const m = /RESULT (\[.*\])/.exec(dom);
  assert.ok(m, `page result: ${dom.slice(0, 500)}`);
  const seen = JSON.parse(m[1].replace(/&quot;/g, '"')) as Array<{ backend: string; count: number }>;
  assert.deepEqual(seen.map((s) => s.count), [1, 2, 3, 4, 5]);
  assert.equal(new Set(seen.map((s) => s.backend)).size, 1);
  const h3Headers = netlogEvents(netlog).filter((e) => e.type === 'HTTP3_HEADERS_RECEIVED');
  assert.ok(h3Headers.length >= 6, `responses over HTTP/3: ${h3Headers.length}`);
});

test('chunked PHP responses over HTTP/3 always finish (40 fresh connections, the bench client)', { timeout: 120_000 }, async () => {
  // The end of a chunked response arrives in its own TCP segment, after the body left; when the client's
  // ACK landed in between, quiche 0.18 dropped a FIN written alone and the request hung (measured: 1 in
  // ~15 before the fix). The bench's HTTP/3 client (quiche + src/http3; checked against Caddy) waits for it.
  const { h3Fetch } = await import('../../bench/lib/h3-client.ts');
  for (let i = 0; i < 40; i++) {
    const res = await h3Fetch({ host: '127.0.0.1', port: lb.httpsPort, path: '/session.php', collectBody: true, timeoutMs: 5000 });
    assert.equal(res.status, 200);
    assert.equal(JSON.parse(res.body!.toString()).count, 1);
  }
});
