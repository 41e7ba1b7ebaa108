// `quiclb doctor` as a real process against configs built here: an expired certificate and a port the
// test holds open must FAIL (exit 1), a clean config must not; plus the UDP-buffer check it shares with
// the primary, against the real kernel.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, writeFile, readFile, readdir, chmod } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';
import net from 'node:net';
import dgram from 'node:dgram';
import selfsigned from 'selfsigned';
import { BIN } from '../support/quiclb-process.ts';
import { freePort } from '../../bench/lib/procs.ts';
import { checkUdpBuffers } from '../../src/shared/udp-buffers.ts';
import { checkQuicheBinding } from '../../src/cli/doctor-checks.ts';
import { validateConfig } from '../../src/config/load.ts';

const DAY = 86_400_000;

interface Pair {
  certFile: string;
  keyFile: string;
}

async function makeCert(dir: string, name: string, notBefore: Date, notAfter: Date): Promise<Pair> {
  const pems = await selfsigned.generate([{ name: 'commonName', value: `doctor-${name}` }], {
    keyType: 'ec',
    algorithm: 'sha256',
    notBeforeDate: notBefore,
    notAfterDate: notAfter,
    extensions: [{ name: 'subjectAltName', altNames: [{ type: 2, value: 'localhost' }] }],
  });
  const certFile = path.join(dir, `${name}-cert.pem`);
  const keyFile = path.join(dir, `${name}-key.pem`);
  await writeFile(certFile, pems.cert);
  await writeFile(keyFile, pems.private, { mode: 0o600 });
  return { certFile, keyFile };
}

async function writeConfig(dir: string, name: string, config: Record<string, unknown>): Promise<string> {
  const file = path.join(dir, `${name}.json`);
  await writeFile(file, JSON.stringify(config, null, 2));
  return file;
}

function doctor(configFile: string): Promise<{ code: number; stdout: string; stderr: string }> {
  const env = { ...process.env };
  for (const k of ['SSL_CERT_PATH', 'SSL_KEY_PATH', 'BIND_ADDRESS', 'BACKEND_SERVERS']) delete env[k];
  return new Promise((resolve) => {
    execFile(process.execPath, [BIN, 'doctor', '--config', configFile], { env, timeout: 30_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

const lines = (out: string, status: string) => out.split('\n').filter((l) => l.startsWith(`${status} `));

async function baseConfig(dir: string, pair: Pair, udpBufferSize = 65536) {
  return {
    server: { bindAddress: '127.0.0.1', httpPort: await freePort(), httpsPort: await freePort() },
    tls: { certFile: pair.certFile, keyFile: pair.keyFile, stateDir: path.join(dir, 'state') },
    quic: { udpBufferSize },
  };
}

test('expired certificate and an occupied HTTPS port: FAIL lines naming both, exit 1', async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'quiclb-doctor-'));
  const pair = await makeCert(dir, 'expired', new Date(Date.now() - 60 * DAY), new Date(Date.now() - 2 * DAY));
  const config = await baseConfig(dir, pair);
  const httpsPort = config.server.httpsPort;
  const holder = net.createServer();
  await new Promise<void>((resolve) => holder.listen(httpsPort, '127.0.0.1', resolve));
  try {
    const res = await doctor(await writeConfig(dir, 'expired', config));
    assert.equal(res.code, 1, res.stdout + res.stderr);
    const fails = lines(res.stdout, 'FAIL');
    const certFail = fails.find((l) => l.startsWith('FAIL  certificate:'));
    assert.ok(certFail, `no certificate FAIL in:\n${res.stdout}`);
    assert.match(certFail, new RegExp(`${pair.certFile.replaceAll('.', '\\.')} .*expired on .*2 day\\(s\\) ago — fix: `));
    const portFail = fails.find((l) => l.includes(`port ${httpsPort}/tcp is in use`));
    assert.ok(portFail, `no FAIL for port ${httpsPort}/tcp in:\n${res.stdout}`);
    // The holder is this test process: the doctor finds it through /proc.
    assert.match(portFail, new RegExp(`by pid ${process.pid} \\(`));
    assert.match(portFail, / — fix: .*server\.httpsPort/);
    // Only the TCP side is held: UDP on the same number and the HTTP port are free.
    assert.ok(lines(res.stdout, 'OK').some((l) => l.startsWith(`OK    port ${httpsPort}/udp:`)), res.stdout);
    assert.ok(lines(res.stdout, 'OK').some((l) => l.startsWith(`OK    port ${config.server.httpPort}/tcp:`)), res.stdout);
    assert.equal(fails.length, 2, res.stdout);
    assert.match(res.stdout, /quiclb doctor: 2 failed/);
  } finally {
    holder.close();
  }
});

test('a clean config (valid certificate, free ports) has no FAIL line and exits 0', async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'quiclb-doctor-'));
  const pair = await makeCert(dir, 'good', new Date(Date.now() - DAY), new Date(Date.now() + 90 * DAY));
  const config = await baseConfig(dir, pair);
  const res = await doctor(await writeConfig(dir, 'good', config));
  assert.equal(lines(res.stdout, 'FAIL').length, 0, res.stdout);
  assert.equal(res.code, 0, res.stdout + res.stderr);
  const ok = lines(res.stdout, 'OK');
  for (const prefix of ['OK    certificate: ', 'OK    certificate-key: ', 'OK    udp-buffers: ', 'OK    key-ring: ',
    `OK    port ${config.server.httpPort}/tcp: `, `OK    port ${config.server.httpsPort}/tcp: `, `OK    port ${config.server.httpsPort}/udp: `]) {
    assert.ok(ok.some((l) => l.startsWith(prefix)), `missing "${prefix}" in:\n${res.stdout}`);
  }
  assert.match(res.stdout, /certificate: .* valid until .* \((89|90) days\)/);
  assert.match(res.stdout, /^OK    quiche-binding: thread-safe copy: .*HTTP\/3 on every shard$/m);
});

test('an unknown build of the quiche binding WARNs that HTTP/3 would run on shard 0 only, and writes nothing', async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'quiclb-doctor-'));
  const original = path.join(dir, 'node.napi.node');
  const target = path.join(dir, 'copy.node');
  const bytes = Buffer.from(await readFile(createRequire(import.meta.url).resolve('@matrixai/quic-linux-x64')));
  bytes[4096] ^= 1;
  await writeFile(original, bytes);
  const config = validateConfig({});
  const r = checkQuicheBinding(config, { original, target });
  assert.equal(r.status, 'WARN');
  assert.match(r.detail, /unknown build .*shard 0 only/);
  assert.match(r.fix ?? '', /npm install/);
  await writeFile(original, await readFile(createRequire(import.meta.url).resolve('@matrixai/quic-linux-x64')));
  assert.equal(checkQuicheBinding(config, { original, target }).status, 'OK');
  assert.deepEqual((await readdir(dir)).sort(), ['node.napi.node'], 'doctor writes nothing');
});

test('a certificate expiring soon WARNs; a key from another pair FAILs', async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'quiclb-doctor-'));
  const soon = await makeCert(dir, 'soon', new Date(Date.now() - DAY), new Date(Date.now() + 5 * DAY + 3600_000));
  const other = await makeCert(dir, 'other', new Date(Date.now() - DAY), new Date(Date.now() + 90 * DAY));
  const config = await baseConfig(dir, { certFile: soon.certFile, keyFile: other.keyFile });
  const res = await doctor(await writeConfig(dir, 'mismatch', config));
  assert.equal(res.code, 1, res.stdout);
  assert.ok(lines(res.stdout, 'WARN').some((l) => /^WARN  certificate: .* expires on .* in 5 day\(s\) — fix: /.test(l)), res.stdout);
  assert.ok(lines(res.stdout, 'FAIL').some((l) => l.startsWith(`FAIL  certificate-key: tls.keyFile: ${other.keyFile} does not match`)), res.stdout);
});

test('a chain with an unparsable second certificate FAILs as `quiclb start` would refuse it', async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'quiclb-doctor-'));
  const good = await makeCert(dir, 'chain', new Date(Date.now() - DAY), new Date(Date.now() + 90 * DAY));
  const chainFile = path.join(dir, 'chain.pem');
  await writeFile(chainFile, `${await readFile(good.certFile, 'utf8')}-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n`);
  const res = await doctor(await writeConfig(dir, 'chain', await baseConfig(dir, { certFile: chainFile, keyFile: good.keyFile })));
  assert.equal(res.code, 1, res.stdout);
  assert.ok(lines(res.stdout, 'FAIL').some((l) => l.startsWith(`FAIL  certificate: tls.certFile: certificate 2 of 2 in ${chainFile} cannot be parsed`)), res.stdout);
});

test('a key ring others may read FAILs naming tls.keyRing; a missing one will be created', async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'quiclb-doctor-'));
  const pair = await makeCert(dir, 'kr', new Date(Date.now() - DAY), new Date(Date.now() + 90 * DAY));
  const keyRing = path.join(dir, 'keyring');
  await writeFile(keyRing, `${Buffer.alloc(32, 3).toString('base64')}\n`, { mode: 0o644 });
  await chmod(keyRing, 0o644);
  const config = await baseConfig(dir, pair);
  const res = await doctor(await writeConfig(dir, 'kr', { ...config, tls: { ...config.tls, keyRing } }));
  assert.equal(res.code, 1, res.stdout);
  assert.ok(lines(res.stdout, 'FAIL').some((l) => l.startsWith(`FAIL  key-ring: tls.keyRing: ${keyRing} may be read by group or others (mode 0644)`)), res.stdout);
  await chmod(keyRing, 0o600);
  const fixed = await doctor(await writeConfig(dir, 'kr', { ...config, tls: { ...config.tls, keyRing } }));
  assert.ok(lines(fixed.stdout, 'OK').some((l) => l.startsWith(`OK    key-ring: ${keyRing} holds 1 key(s)`)), fixed.stdout);
  const missing = await doctor(await writeConfig(dir, 'kr', { ...config, tls: { ...config.tls, keyRing: path.join(dir, 'new', 'keyring') } }));
  assert.ok(lines(missing.stdout, 'OK').some((l) => /^OK    key-ring: .*does not exist yet; quiclb start creates it/.test(l)), missing.stdout);
});

test('the default bindAddress is probed as quiclb binds it: "::" dual stack', async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'quiclb-doctor-'));
  const pair = await makeCert(dir, 'ds', new Date(Date.now() - DAY), new Date(Date.now() + 90 * DAY));
  const config = await baseConfig(dir, pair);
  const res = await doctor(await writeConfig(dir, 'ds', { ...config, server: { httpPort: config.server.httpPort, httpsPort: config.server.httpsPort } }));
  for (const proto of ['tcp', 'udp']) {
    assert.ok(
      lines(res.stdout, 'OK').some((l) => l.startsWith(`OK    port ${config.server.httpsPort}/${proto}: server.httpsPort${proto === 'udp' ? ' (QUIC)' : ''} on :: (dual stack: IPv6 and IPv4) is free`)),
      res.stdout,
    );
  }
});

test('no certificate configured: WARN that a self-signed one will be generated', async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'quiclb-doctor-'));
  const config = await baseConfig(dir, { certFile: '', keyFile: '' });
  const res = await doctor(await writeConfig(dir, 'selfsigned', { ...config, tls: { stateDir: path.join(dir, 'state') } }));
  assert.equal(res.code, 0, res.stdout);
  assert.ok(lines(res.stdout, 'WARN').some((l) => l.startsWith('WARN  certificate: tls.certFile is not set: a self-signed certificate will be generated')), res.stdout);
});

test('quic.udpBufferSize above net.core.rmem_max: WARN with what the kernel granted and the sysctl fix', async (t) => {
  let rmemMax: number;
  try {
    rmemMax = Number((await readFile('/proc/sys/net/core/rmem_max', 'utf8')).trim());
  } catch {
    t.skip('no /proc/sys/net/core/rmem_max here');
    return;
  }
  const wanted = rmemMax + 1024 * 1024;
  if (wanted > 2 ** 31 - 1) {
    t.skip(`rmem_max ${rmemMax} is too large to exceed with a valid quic.udpBufferSize`);
    return;
  }
  const dir = await mkdtemp(path.join(tmpdir(), 'quiclb-doctor-'));
  const pair = await makeCert(dir, 'udp', new Date(Date.now() - DAY), new Date(Date.now() + 90 * DAY));
  const res = await doctor(await writeConfig(dir, 'udp', await baseConfig(dir, pair, wanted)));
  assert.equal(res.code, 0, `a short buffer is a warning, not a failure:\n${res.stdout}`);
  const warn = lines(res.stdout, 'WARN').find((l) => l.startsWith('WARN  udp-buffers:'));
  assert.ok(warn, res.stdout);
  // The kernel caps the request at rmem_max (and reports it doubled, which the check undoes).
  assert.match(warn, new RegExp(`receive ${rmemMax} / send \\d+ bytes for the ${wanted} asked`));
  assert.match(warn, new RegExp(`net\\.core\\.rmem_max=${rmemMax}`));
  assert.match(warn, /— fix: .*tuning\/sysctl\.sh/);
});

test('checkUdpBuffers: granted when under the cap, refused message on an unbound socket', async () => {
  const socket = dgram.createSocket('udp4');
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
  try {
    const small = checkUdpBuffers(socket, 65536);
    assert.equal(small.ok, true, small.message);
    assert.equal(small.rcv, 65536);
    assert.equal(small.snd, 65536);
    assert.equal(small.rcvKernel, process.platform === 'linux' ? 131072 : 65536);
  } finally {
    socket.close();
  }
  const unbound = dgram.createSocket('udp4');
  const refused = checkUdpBuffers(unbound, 65536);
  unbound.close();
  assert.equal(refused.ok, false);
  assert.match(refused.message ?? '', /^cannot read UDP buffer sizes \(is the socket bound\?\)/);
});

test('php-fpm backends: a live socket and TCP port are OK, a missing socket FAILs with the fix, exit 1', async () => {
  const { startFpmBackends } = await import('../support/fpm-backends.ts');
  const dir = await mkdtemp(path.join(tmpdir(), 'quiclb-doctor-'));
  const pair = await makeCert(dir, 'fpm', new Date(Date.now() - DAY), new Date(Date.now() + 90 * DAY));
  const fpm = await startFpmBackends([
    { id: 'live-unix', listen: 'unix', children: 1 },
    { id: 'live-tcp', listen: 'tcp', children: 1 },
  ]);
  try {
    const config = {
      ...(await baseConfig(dir, pair)),
      loadBalancer: {
        backendServers: [...fpm.backends.map((b) => b.config()), { id: 'gone', protocol: 'fastcgi', socket: path.join(dir, 'no-such-fpm.sock') }],
      },
      moodle: { wwwRoot: dir },
    };
    const res = await doctor(await writeConfig(dir, 'fpm', config));
    assert.equal(res.code, 1, res.stdout + res.stderr);
    const ok = lines(res.stdout, 'OK');
    assert.ok(ok.some((l) => l.startsWith(`OK    php-fpm live-unix: unix:${fpm.backends[0].socketPath} accepts connections`)), res.stdout);
    assert.ok(ok.some((l) => l.startsWith(`OK    php-fpm live-tcp: 127.0.0.1:${fpm.backends[1].port} accepts connections`)), res.stdout);
    const fail = lines(res.stdout, 'FAIL').find((l) => l.startsWith('FAIL  php-fpm gone:'));
    assert.ok(fail, res.stdout);
    assert.match(fail, /does not exist .*is php-fpm running/);
    assert.match(fail, /— fix: start php-fpm/);
  } finally {
    await fpm.stop();
  }
});
