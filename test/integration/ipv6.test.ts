// IPv6: the default bindAddress "::" is one dual-stack socket per port, so HTTP/1.1, HTTP/2 and HTTP/3 answer
// over ::1 and over 127.0.0.1 alike (before, the default 0.0.0.0 left IPv6 clients out); a list of addresses
// binds each. QUIC clients reach the shards with normalised addresses: an IPv4 client through the dual-stack
// socket is 127.0.0.1, not ::ffff:127.0.0.1.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { startQuiclb, type QuiclbProcess } from '../support/quiclb-process.ts';
import { runBounded } from '../support/quic-harness.ts';
import { execFileP } from '../support/http-client.ts';

const base = { healthCheck: { enabled: false }, loadBalancer: { backendServers: [{ id: 'b1', host: '127.0.0.1', port: 9 }] } };

async function curl(args: string[]): Promise<{ protocol: string }> {
  const { stdout } = await execFileP('curl', ['-sS', '--max-time', '10', '-k', ...args]);
  return JSON.parse(stdout) as { protocol: string };
}

async function h3(q: QuiclbProcess, host: string): Promise<{ protocol: string }> {
  const dir = await mkdtemp(path.join(tmpdir(), 'quiclb-v6-'));
  try {
    const authority = host.includes(':') ? `[${host}]` : host;
    const r = await runBounded(
      'gtlsclient',
      ['-q', '--exit-on-all-streams-close', '--timeout=10s', `--download=${dir}`, host, String(q.httpsPort), `https://${authority}:${q.httpsPort}/api/test`],
      20_000,
    );
    assert.equal(r.code, 0, r.stderr.slice(-2000));
    return JSON.parse(await readFile(path.join(dir, 'test'), 'utf8')) as { protocol: string };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

async function allProtocols(q: QuiclbProcess, host: string): Promise<void> {
  const family = host.includes(':') ? '-6' : '-4';
  const authority = host.includes(':') ? `[${host}]` : host;
  assert.equal((await curl([family, `http://${authority}:${q.httpPort}/api/test`])).protocol, 'HTTP/1.1', `h1 over ${host}`);
  assert.equal((await curl([family, '--http2', `https://${authority}:${q.httpsPort}/api/test`])).protocol, 'HTTP/2', `h2 over ${host}`);
  assert.equal((await h3(q, host)).protocol, 'HTTP/3', `h3 over ${host}`);
}

test('default bindAddress: dual stack, h1/h2/h3 over ::1 and over 127.0.0.1', { timeout: 90_000 }, async () => {
  // bindAddress undefined: the generated config leaves it out, so the default applies.
  const q = await startQuiclb({ config: { ...base, server: { bindAddress: undefined } }, workers: 1 });
  try {
    const ready = q.logs().find((e) => e.msg === 'quiclb ready')!;
    assert.equal(ready.https, `[::]:${q.httpsPort}`, JSON.stringify(ready));
    await allProtocols(q, '::1');
    await allProtocols(q, '127.0.0.1');
    // The QUIC router hands the shards normalised client addresses (the access log shows what the shard got).
    await q.waitForLog((e) => e.msg === 'request' && e.protocol === 'HTTP/3' && e.client === '127.0.0.1', 5000);
    const h3Clients = q.logs().filter((e) => e.msg === 'request' && e.protocol === 'HTTP/3').map((e) => e.client);
    assert.deepEqual(h3Clients, ['::1', '127.0.0.1']);
  } finally {
    await q.stop();
  }
});

test('a list of bind addresses binds each: ["127.0.0.1", "::1"]', { timeout: 90_000 }, async () => {
  const q = await startQuiclb({ config: { ...base, server: { bindAddress: ['127.0.0.1', '::1'] } }, workers: 1 });
  try {
    const ready = q.logs().find((e) => e.msg === 'quiclb ready')!;
    assert.equal(ready.h3, `127.0.0.1:${q.httpsPort}/udp, [::1]:${q.httpsPort}/udp`);
    await allProtocols(q, '::1');
    await allProtocols(q, '127.0.0.1');
  } finally {
    await q.stop();
  }
});

test('two IPv4 addresses: each QUIC client is answered from the address it talks to', { timeout: 60_000 }, async () => {
  // Linux routes all of 127.0.0.0/8 to loopback. ngtcp2 drops datagrams from any other source, so an answer
  // sent from the wrong socket would fail the handshake.
  const q = await startQuiclb({ config: { ...base, server: { bindAddress: ['127.0.0.1', '127.0.0.2'] } }, workers: 1 });
  try {
    assert.equal((await h3(q, '127.0.0.2')).protocol, 'HTTP/3');
    assert.equal((await h3(q, '127.0.0.1')).protocol, 'HTTP/3');
    assert.equal((await curl(['-4', `http://127.0.0.2:${q.httpPort}/api/test`])).protocol, 'HTTP/1.1');
  } finally {
    await q.stop();
  }
});
