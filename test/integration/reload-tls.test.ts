// A certificate renewal by reload: the files behind tls.certFile/keyFile are replaced in place and quiclb gets
// SIGHUP. New TLS (TCP) and QUIC handshakes are served the new certificate, checked by its fingerprint with
// node:tls and with our HTTP/3 client; an HTTP/3 connection and an HTTP/2 session opened before keep working.
// A pair that does not match is refused (tls.keyFile named) and the served certificate stays.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { copyFile, mkdtemp, readFile } from 'node:fs/promises';
import { X509Certificate } from 'node:crypto';
import { tmpdir } from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import http2 from 'node:http2';
import { startQuiclb, type QuiclbProcess } from '../support/quiclb-process.ts';
import { startIdBackend, type IdBackend } from '../support/id-backend.ts';
import { getJson } from '../support/http-client.ts';
import { H3Connection } from '../../bench/lib/h3-client.ts';
import { ensureSelfSigned } from '../../src/shared/tls-material.ts';

let lb: QuiclbProcess | undefined;
let backend: IdBackend | undefined;
const h3s: H3Connection[] = [];

after(async () => {
  for (const c of h3s) c.close();
  await lb?.stop();
  await backend?.close();
});

/** SHA-256 fingerprint of the certificate a TLS handshake over TCP is served now. */
function tcpFingerprint(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = tls.connect({ host: '127.0.0.1', port, rejectUnauthorized: false, ALPNProtocols: ['http/1.1'] }, () => {
      const fp = s.getPeerCertificate().fingerprint256;
      s.end();
      resolve(fp);
    });
    s.on('error', reject);
  });
}

function quicFingerprint(conn: H3Connection): string {
  const der = conn.peerCertificate();
  assert.ok(der, 'the QUIC handshake delivered a certificate');
  return new X509Certificate(der).fingerprint256;
}

function h2Get(session: http2.ClientHttp2Session, p: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = session.request({ ':path': p });
    let status = 0;
    let body = '';
    req.setEncoding('utf8');
    req.on('response', (h) => (status = Number(h[':status'])));
    req.on('data', (d: string) => (body += d));
    req.on('end', () => resolve({ status, body }));
    req.on('error', reject);
  });
}

test('a reload swaps the certificate for new TLS and QUIC handshakes; open HTTP/3 and HTTP/2 connections keep working', { timeout: 60_000 }, async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'quiclb-reload-tls-'));
  const pairA = await ensureSelfSigned(path.join(dir, 'a'));
  const pairB = await ensureSelfSigned(path.join(dir, 'b'));
  const fpA = new X509Certificate(await readFile(pairA.certFile)).fingerprint256;
  const fpB = new X509Certificate(await readFile(pairB.certFile)).fingerprint256;
  assert.notEqual(fpA, fpB);
  const certFile = path.join(dir, 'live.pem');
  const keyFile = path.join(dir, 'live.key');
  await copyFile(pairA.certFile, certFile);
  await copyFile(pairA.keyFile, keyFile);

  backend = await startIdBackend('only');
  lb = await startQuiclb({
    config: {
      tls: { certFile, keyFile },
      healthCheck: { enabled: false },
      loadBalancer: { backendServers: [{ id: 'only', host: '127.0.0.1', port: backend.port }] },
    },
    workers: 2,
  });
  const proc = lb;

  assert.equal(await tcpFingerprint(proc.httpsPort), fpA);
  const before = await H3Connection.connect({ host: '127.0.0.1', port: proc.httpsPort });
  h3s.push(before);
  assert.equal(quicFingerprint(before), fpA);
  assert.equal((await before.request({ path: '/before' })).status, 200);
  const h2 = http2.connect(`https://127.0.0.1:${proc.httpsPort}`, { rejectUnauthorized: false });
  h2.on('error', () => undefined);
  assert.equal((await h2Get(h2, '/before')).status, 200);

  // Renewal in place: same paths, new files.
  await copyFile(pairB.certFile, certFile);
  await copyFile(pairB.keyFile, keyFile);
  proc.child.kill('SIGHUP');
  const reloaded = await proc.waitForLog((e) => e.msg === 'configuration reloaded' && e.generation === 2);
  assert.deepEqual(reloaded.needsRestart, []);

  // Every shard took it: several new handshakes (spread over both shards) all see B.
  for (let i = 0; i < 4; i++) assert.equal(await tcpFingerprint(proc.httpsPort), fpB, `TLS handshake ${i} after the reload`);
  for (let i = 0; i < 3; i++) {
    const fresh = await H3Connection.connect({ host: '127.0.0.1', port: proc.httpsPort });
    h3s.push(fresh);
    assert.equal(quicFingerprint(fresh), fpB, `QUIC handshake ${i} after the reload`);
    assert.equal((await fresh.request({ path: '/after' })).status, 200);
  }

  // The connections made before the reload carry on, with the certificate they were made with.
  for (let i = 0; i < 5; i++) {
    const res = await before.request({ path: `/old-h3-${i}`, collectBody: true });
    assert.equal(res.status, 200);
    assert.equal(res.body?.toString(), 'only\n');
  }
  assert.equal(quicFingerprint(before), fpA);
  assert.equal((await h2Get(h2, '/old-h2')).status, 200);

  // A key that does not belong to the certificate is refused, naming the field; B stays served.
  await copyFile(pairA.keyFile, keyFile);
  proc.child.kill('SIGHUP');
  const refused = await proc.waitForLog((e) => typeof e.msg === 'string' && e.msg.startsWith('configuration reload refused'));
  assert.equal(refused.field, 'tls.keyFile');
  assert.equal(await tcpFingerprint(proc.httpsPort), fpB);
  const third = await H3Connection.connect({ host: '127.0.0.1', port: proc.httpsPort });
  h3s.push(third);
  assert.equal(quicFingerprint(third), fpB);
  const stats = (await getJson(`http://127.0.0.1:${proc.httpPort}/stats`)).body;
  assert.equal(stats.config.generation, 2);
  assert.equal(stats.config.failedReloads, 1);
  assert.match(stats.config.lastReloadError, /^tls\.keyFile: /);
  h2.close();
});
