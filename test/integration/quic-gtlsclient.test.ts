// The QUIC engine (UdpRouter + 2 real QuicEndpoint shards) against gtlsclient (ngtcp2), a client nobody
// here wrote: streams, downloads checked byte for byte, migration, NAT rebinding, key update, and shard loss.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, mkdir, readFile, rm, writeFile, readdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { startQuicHarness, gtlsclient, type QuicHarness } from '../support/quic-harness.ts';
import { patternBytes } from '../support/quic-shard-worker.ts';
import {
  G_QUIC_HANDSHAKES,
  G_QUIC_MIGRATIONS,
  G_QUIC_NAT_REBINDINGS,
  S_QUIC_CONNECTIONS,
  SC_CONNECTIONS_TOTAL,
} from '../../src/shared/state.ts';

let h: QuicHarness;
let dir: string;

before(async () => {
  h = await startQuicHarness({ shards: 2 });
  dir = await mkdtemp(path.join(tmpdir(), 'quiclb-gtls-'));
});

after(async () => {
  await h?.close();
  await rm(dir, { recursive: true, force: true });
});

async function freshDir(name: string): Promise<string> {
  const d = path.join(dir, name);
  await rm(d, { recursive: true, force: true });
  await mkdir(d);
  return d;
}

test('several streams at once, bodies checked byte for byte', { timeout: 30_000 }, async () => {
  const d = await freshDir('streams');
  const handshakes = h.state.globalCounter(G_QUIC_HANDSHAKES);
  const r = await gtlsclient(h.port, ['/s1?bytes=300000', '/s2', '/s3?bytes=5000', '/s4?bytes=1'], ['-n', '8', `--download=${d}`]);
  assert.equal(r.code, 0, r.stderr);
  const files = await readdir(d);
  assert.deepEqual(files.sort(), ['s1?bytes=300000', 's2', 's3?bytes=5000', 's4?bytes=1']);
  assert.ok((await readFile(path.join(d, 's1?bytes=300000'))).equals(patternBytes(300000)));
  assert.ok((await readFile(path.join(d, 's3?bytes=5000'))).equals(patternBytes(5000)));
  assert.match(await readFile(path.join(d, 's2'), 'utf8'), /path=\/s2 shard=\d proto=HTTP\/3/);
  assert.equal(h.state.globalCounter(G_QUIC_HANDSHAKES), handshakes + 1n);
});

test('a 4 MB download survives key updates', { timeout: 30_000 }, async () => {
  const d = await freshDir('keyupdate');
  const r = await gtlsclient(h.port, ['/big?bytes=4000000'], ['--key-update=20ms', `--download=${d}`]);
  assert.equal(r.code, 0, r.stderr);
  assert.ok((await readFile(path.join(d, 'big?bytes=4000000'))).equals(patternBytes(4_000_000)));
});

test('active migration: the client moves to a new address and CID, requests complete, counted', { timeout: 30_000 }, async () => {
  const d = await freshDir('migrate');
  const before = h.state.globalCounter(G_QUIC_MIGRATIONS);
  // The responses wait 600/900 ms so the connection is busy when the client moves (100 ms after the handshake).
  const r = await gtlsclient(h.port, ['/m1?delay=600', '/m2?bytes=200000&delay=900'], ['--change-local-addr=100ms', `--download=${d}`]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(await readFile(path.join(d, 'm1?delay=600'), 'utf8'), /path=\/m1/);
  assert.ok((await readFile(path.join(d, 'm2?bytes=200000&delay=900'))).equals(patternBytes(200000)));
  assert.ok(h.state.globalCounter(G_QUIC_MIGRATIONS) > before, 'migration counted');
});

test('NAT rebinding during an upload: same CID, new port, counted', { timeout: 30_000 }, async () => {
  const d = await freshDir('rebind');
  const upload = path.join(dir, 'upload.bin');
  await writeFile(upload, patternBytes(3_000_000));
  const before = h.state.globalCounter(G_QUIC_NAT_REBINDINGS);
  // ngtcp2's simulated rebinding only sends from the new port when it has data to send: upload.
  const r = await gtlsclient(h.port, ['/up'], ['-m', 'POST', '-d', upload, '--change-local-addr=20ms', '--nat-rebinding', `--download=${d}`]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(await readFile(path.join(d, 'up'), 'utf8'), 'received=3000000\n');
  assert.ok(h.state.globalCounter(G_QUIC_NAT_REBINDINGS) > before, 'NAT rebinding counted');
});

test('new connections spread over both shards', { timeout: 30_000 }, async () => {
  const before = [0, 1].map((i) => h.state.shardCounter(i, SC_CONNECTIONS_TOTAL));
  const runs = await Promise.all([1, 2, 3, 4].map((i) => gtlsclient(h.port, [`/spread${i}?delay=300`])));
  for (const r of runs) assert.equal(r.code, 0, r.stderr);
  const after = [0, 1].map((i) => h.state.shardCounter(i, SC_CONNECTIONS_TOTAL));
  assert.ok(after[0] - before[0] >= 1n && after[1] - before[1] >= 1n, `per shard: ${before} -> ${after}`);
});

test('a dead shard loses only its own connections', { timeout: 30_000 }, async () => {
  // Earlier tests' connections must have finished draining (RFC 9000 §10.2) so least-connections sees 0/0.
  const idle = Date.now() + 10_000;
  while (h.state.shardGauge(0, S_QUIC_CONNECTIONS) + h.state.shardGauge(1, S_QUIC_CONNECTIONS) > 0) {
    assert.ok(Date.now() < idle, 'earlier connections closed');
    await new Promise((r) => setTimeout(r, 50));
  }
  // Several clients, each with a fast request that reports its shard and a slow one still in flight
  // when shard 1 dies: the slow requests on shard 0 complete, those on shard 1 do not.
  const clients = await Promise.all(['c0', 'c1', 'c2', 'c3'].map((n) => freshDir(`kill-${n}`)));
  const runs = clients.map((d, i) =>
    gtlsclient(h.port, [`/fast${i}`, `/slow${i}?delay=1500`], ['-n', '2', `--download=${d}`, '--timeout=3s']),
  );
  const placed = await Promise.all(
    clients.map(async (d, i) => {
      const deadline = Date.now() + 8000;
      for (;;) {
        const body = await readFile(path.join(d, `fast${i}`), 'utf8').catch(() => '');
        const m = /shard=(\d)/.exec(body);
        if (m) return Number(m[1]);
        assert.ok(Date.now() < deadline, `client ${i} got its first answer`);
        await new Promise((r) => setTimeout(r, 20));
      }
    }),
  );
  assert.ok(placed.includes(0) && placed.includes(1), `least-connections spread the clients: ${placed}`);
  await h.killShard(1);
  await Promise.all(runs);
  for (const [i, d] of clients.entries()) {
    const slow = await readFile(path.join(d, `slow${i}?delay=1500`), 'utf8').catch(() => '');
    if (placed[i] === 0) assert.match(slow, /shard=0/, `client ${i} on the surviving shard completes`);
    else assert.equal(slow, '', `client ${i} on the dead shard loses its request`);
  }
  // New connections keep working on the surviving shard.
  const d = await freshDir('afterKill');
  const r = await gtlsclient(h.port, ['/after'], [`--download=${d}`]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(await readFile(path.join(d, 'after'), 'utf8'), /shard=0/);
});
