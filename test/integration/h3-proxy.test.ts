// HTTP/3 end to end through the real quiclb binary to real nginx + php-fpm backends, driven by clients
// nobody here wrote: gtlsclient (ngtcp2) and headless Chromium.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
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

test('connection migration: --change-local-addr and --nat-rebinding complete and are counted', { timeout: 60_000 }, async () => {
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
  // gtlsclient's NAT rebinding only shows when it still has data to send after the switch: upload.
  const payload = path.join(dir, 'payload.bin');
  await writeFile(payload, randomBytes(4 * 1024 * 1024));
  const rebind = await gtlsclient(lb.httpsPort, ['/upload.php'], [`--download=${dir}`, `--data=${payload}`, '--change-local-addr=20ms', '--nat-rebinding'], 45_000);
  assert.equal(rebind.code, 0, rebind.stderr.slice(-2000));
  assert.equal(JSON.parse(await readFile(path.join(dir, 'upload.php'), 'utf8')).bytes, 4 * 1024 * 1024);
  const afterStats = (await stats()).quic;
  assert.ok(afterStats.natRebindings >= mid.natRebindings + 1, JSON.stringify(afterStats));
  const metrics = (await getJson(`http://127.0.0.1:${lb.httpPort}/metrics`)).body as string;
  assert.match(metrics, /quiclb_quic_migrations_total [1-9]/);
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
  // The netlog names event types by number; map them back and look for HTTP/3 response headers on the
  // first request stream of a QUIC session whose handshake completed.
  const log = JSON.parse(netlog) as { constants: { logEventTypes: Record<string, number> }; events: Array<{ type: number; params?: Record<string, unknown> }> };
  const name = new Map(Object.entries(log.constants.logEventTypes).map(([k, v]) => [v, k]));
  const events = log.events.map((e) => ({ type: name.get(e.type), params: e.params }));
  assert.ok(events.some((e) => e.type === 'QUIC_SESSION_CRYPTO_HANDSHAKE_COMPLETE'), 'QUIC handshake completed');
  assert.ok(events.some((e) => e.type === 'HTTP3_HEADERS_RECEIVED' && e.params?.stream_id === 0), 'response headers arrived over HTTP/3');
});
