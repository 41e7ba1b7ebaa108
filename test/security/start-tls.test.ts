// `quiclb start` checks the certificate and key before it listens: unusable files exit 2 with one line that
// names the field and says what is wrong (before, a garbage certificate left a primary logging "quiclb ready"
// while its shards crash-looped); an expired certificate only warns.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import selfsigned from 'selfsigned';
import { BIN, startQuiclb } from '../support/quiclb-process.ts';
import { freePort } from '../../bench/lib/procs.ts';

const DAY = 86_400_000;

async function pair(dir: string, name: string, notAfter = new Date(Date.now() + 30 * DAY)): Promise<{ certFile: string; keyFile: string }> {
  const pems = await selfsigned.generate([{ name: 'commonName', value: name }], {
    keyType: 'ec',
    algorithm: 'sha256',
    notBeforeDate: new Date(notAfter.getTime() - 60 * DAY),
    notAfterDate: notAfter,
  });
  const certFile = path.join(dir, `${name}-cert.pem`);
  const keyFile = path.join(dir, `${name}-key.pem`);
  await writeFile(certFile, pems.cert);
  await writeFile(keyFile, pems.private, { mode: 0o600 });
  return { certFile, keyFile };
}

function start(configFile: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const env = { ...process.env };
  for (const k of ['SSL_CERT_PATH', 'SSL_KEY_PATH', 'BIND_ADDRESS', 'BACKEND_SERVERS']) delete env[k];
  return new Promise((resolve) => {
    // A quiclb that gets past the check keeps running: the time limit ends it (code null = no exit of its own).
    const child = execFile(process.execPath, [BIN, 'start', '--config', configFile, '--workers', '1'], { env, timeout: 12_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : null) : child.exitCode, stdout, stderr });
    });
  });
}

test('unusable certificate or key: exit 2 with one line naming the field', { timeout: 90_000 }, async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'quiclb-tls-'));
  const a = await pair(dir, 'a');
  const b = await pair(dir, 'b');
  const garbage = path.join(dir, 'garbage.pem');
  await writeFile(garbage, 'this is not PEM at all\n');
  const badBase64 = path.join(dir, 'bad-base64.pem');
  await writeFile(badBase64, '-----BEGIN CERTIFICATE-----\nAAAAAAAA\n-----END CERTIFICATE-----\n');
  const cases: Array<[string, { certFile: string; keyFile: string }, RegExp]> = [
    ['garbage cert', { certFile: garbage, keyFile: a.keyFile }, /^quiclb: invalid config: tls\.certFile: .*garbage\.pem holds no PEM certificate/],
    ['unparsable cert', { certFile: badBase64, keyFile: a.keyFile }, /^quiclb: invalid config: tls\.certFile: the certificate in .*bad-base64\.pem cannot be parsed/],
    ['garbage key', { certFile: a.certFile, keyFile: garbage }, /^quiclb: invalid config: tls\.keyFile: .*garbage\.pem is not a PEM private key/],
    ['certificate as key', { certFile: a.certFile, keyFile: a.certFile }, /^quiclb: invalid config: tls\.keyFile: .*a-cert\.pem is not a PEM private key/],
    ['mismatched pair', { certFile: a.certFile, keyFile: b.keyFile }, /^quiclb: invalid config: tls\.keyFile: .*b-key\.pem does not match the certificate in .*a-cert\.pem/],
    ['missing file', { certFile: path.join(dir, 'nope.pem'), keyFile: a.keyFile }, /^quiclb: invalid config: tls\.certFile: .*nope\.pem.*ENOENT/],
  ];
  for (const [name, tls, message] of cases) {
    const file = path.join(dir, `${name.replaceAll(' ', '-')}.json`);
    await writeFile(file, JSON.stringify({
      server: { bindAddress: '127.0.0.1', httpPort: await freePort(), httpsPort: await freePort() },
      tls: { ...tls, stateDir: path.join(dir, 'state') },
      healthCheck: { enabled: false },
      loadBalancer: { backendServers: [{ id: 'b1', host: '127.0.0.1', port: 9 }] },
    }));
    const res = await start(file);
    assert.equal(res.code, 2, `${name}: exit code (stderr: ${res.stderr})`);
    assert.equal(res.stderr.trim().split('\n').length, 1, `${name}: one line: ${res.stderr}`);
    assert.match(res.stderr.trim(), message, name);
    assert.doesNotMatch(res.stdout, /quiclb ready/, name);
  }
});

test('an expired certificate starts with a warning that names tls.certFile', { timeout: 60_000 }, async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'quiclb-tls-'));
  const expired = await pair(dir, 'old', new Date(Date.now() - 3 * DAY));
  const q = await startQuiclb({
    config: { tls: expired, healthCheck: { enabled: false }, loadBalancer: { backendServers: [{ id: 'b1', host: '127.0.0.1', port: 9 }] } },
    workers: 1,
  });
  try {
    const warn = q.logs().find((e) => typeof e.msg === 'string' && e.msg.startsWith('tls.certFile: the certificate EXPIRED'));
    assert.ok(warn, q.lines.join('\n'));
    assert.equal(warn.level, 40);
    assert.match(String(warn.msg), /3 day\(s\) ago/);
  } finally {
    await q.stop();
  }
});
