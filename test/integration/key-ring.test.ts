// The key ring (tls.keyRing): created once with mode 0600, it seeds the TLS session ticket keys of every shard
// (and the Retry and stateless reset keys), so a TLS session ticket from one quiclb process resumes on the
// next one started with the same file, and not on one with another file. A bad key ring exits 2 naming the field.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import tls from 'node:tls';
import { execFile } from 'node:child_process';
import { mkdtemp, stat, writeFile, readFile, chmod } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { BIN, startQuiclb } from '../support/quiclb-process.ts';
import { freePort } from '../../bench/lib/procs.ts';

/** One TLS 1.3 request to quiclb; resolves with the last ticket it got and whether it resumed `session`. */
function tlsConnect(port: number, session?: Buffer): Promise<{ reused: boolean; ticket: Buffer | undefined; body: string }> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: '127.0.0.1', port, servername: 'localhost', rejectUnauthorized: false, ALPNProtocols: ['http/1.1'], minVersion: 'TLSv1.3', session });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error('no answer within 5 s'));
    }, 5000);
    let ticket: Buffer | undefined;
    let reused = false;
    let body = '';
    socket.on('session', (t: Buffer) => (ticket = t));
    socket.once('secureConnect', () => {
      reused = socket.isSessionReused();
      socket.write('GET /api/test HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n');
    });
    socket.on('data', (d: Buffer) => (body += d.toString()));
    socket.once('close', () => {
      clearTimeout(timer);
      resolve({ reused, ticket, body });
    });
    socket.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });
}

const base = { healthCheck: { enabled: false }, quic: { enabled: false }, logging: { accessLog: false }, loadBalancer: { backendServers: [{ id: 'b1', host: '127.0.0.1', port: 9 }] } };

test('a TLS session ticket from one quiclb process resumes on the next one with the same key ring', { timeout: 90_000 }, async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'quiclb-keyring-'));
  const keyRing = path.join(dir, 'sub', 'keyring');
  const stateDir = path.join(dir, 'state');
  const first = await startQuiclb({ config: { ...base, tls: { keyRing } }, workers: 2, stateDir });
  let ticket: Buffer | undefined;
  try {
    assert.equal((await stat(keyRing)).mode & 0o777, 0o600, 'created with mode 0600');
    assert.ok(first.logs().some((e) => e.msg?.toString().startsWith('created a key ring')), first.lines.join('\n'));
    const fresh = await tlsConnect(first.httpsPort);
    assert.match(fresh.body, /^HTTP\/1\.1 200/);
    assert.equal(fresh.reused, false);
    assert.ok(fresh.ticket, 'got a session ticket');
    ticket = fresh.ticket;
    // Both shards share the keys: four more connections (least-connections spreads them) all resume.
    for (let i = 0; i < 4; i++) assert.equal((await tlsConnect(first.httpsPort, ticket)).reused, true, `resumed on connection ${i}`);
  } finally {
    await first.stop();
  }
  const text = await readFile(keyRing, 'utf8');
  // Same key ring (and the same certificate, in the same stateDir): the old ticket resumes.
  const second = await startQuiclb({ config: { ...base, tls: { keyRing } }, workers: 2, stateDir });
  try {
    assert.equal((await tlsConnect(second.httpsPort, ticket)).reused, true, 'resumed after a restart');
    assert.equal(await readFile(keyRing, 'utf8'), text, 'the key ring is kept, not rewritten');
  } finally {
    await second.stop();
  }
  // Another key ring: the ticket means nothing there, a full handshake happens.
  const other = await startQuiclb({ config: { ...base, tls: { keyRing: path.join(dir, 'other-keyring') } }, workers: 2, stateDir });
  try {
    assert.equal((await tlsConnect(other.httpsPort, ticket)).reused, false, 'not resumed under another key ring');
  } finally {
    await other.stop();
  }
});

function start(configFile: string): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [BIN, 'start', '--config', configFile, '--workers', '1'], { timeout: 12_000 }, (err, _stdout, stderr) => {
      resolve({ code: err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : null) : 0, stderr });
    });
  });
}

test('a key ring others may read, or one with garbage, exits 2 with one line naming tls.keyRing', { timeout: 60_000 }, async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'quiclb-keyring-'));
  const open = path.join(dir, 'open-keyring');
  await writeFile(open, `${Buffer.alloc(32, 7).toString('base64')}\n`);
  await chmod(open, 0o644);
  const garbage = path.join(dir, 'garbage-keyring');
  await writeFile(garbage, 'not a key!\n', { mode: 0o600 });
  const short = path.join(dir, 'short-keyring');
  await writeFile(short, `${Buffer.alloc(16, 1).toString('base64')}\n`, { mode: 0o600 });
  const cases: Array<[string, RegExp]> = [
    [open, /^quiclb: invalid config: tls\.keyRing: .*open-keyring may be read by group or others \(mode 0644\); run chmod 600 /],
    [garbage, /^quiclb: invalid config: tls\.keyRing: .*garbage-keyring line 1 is not a base64 key$/],
    [short, /^quiclb: invalid config: tls\.keyRing: .*short-keyring line 1 holds a key of 16 octets; each needs at least 32$/],
  ];
  for (const [keyRing, message] of cases) {
    const file = path.join(dir, `${path.basename(keyRing)}.json`);
    await writeFile(file, JSON.stringify({
      ...base,
      server: { bindAddress: '127.0.0.1', httpPort: await freePort(), httpsPort: await freePort() },
      tls: { keyRing, stateDir: path.join(dir, 'state') },
    }));
    const res = await start(file);
    assert.equal(res.code, 2, `${keyRing}: ${res.stderr}`);
    assert.equal(res.stderr.trim().split('\n').length, 1, res.stderr);
    assert.match(res.stderr.trim(), message);
  }
});
