// Reloads and shard restarts together, with the real primary in this process (so the test can kill a worker
// thread): a shard restarted after a reload starts with the reloaded configuration, one that was starting
// while a reload was applied catches up as soon as it is ready, and reloads asked for in a row are applied
// one after the other.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { request, Agent } from 'undici';
import pino from 'pino';
import { startPrimary } from '../../src/primary/primary.ts';
import { validateConfig } from '../../src/config/load.ts';
import { G_SHARD_RESTARTS } from '../../src/shared/state.ts';
import { freePort } from '../../bench/lib/procs.ts';
import { startIdBackend } from '../support/id-backend.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test('shards restarted after or during a reload run the reloaded configuration; queued reloads apply in order', { timeout: 90_000 }, async () => {
  const [oldB, newB, third] = await Promise.all(['old', 'new', 'third'].map((id) => startIdBackend(id)));
  const server = (b: { id: string; port: number }) => ({ id: b.id, host: '127.0.0.1', port: b.port });
  const base = {
    server: { httpPort: await freePort(), httpsPort: await freePort(), bindAddress: '127.0.0.1', shutdownTimeout: '2s' },
    tls: { stateDir: path.join(await mkdtemp(path.join(tmpdir(), 'quiclb-reload-restart-')), 'state') },
    quic: { enabled: false },
    healthCheck: { enabled: false },
    logging: { level: 'silent', accessLog: false },
  };
  let file: Record<string, unknown> = { ...base, loadBalancer: { backendServers: [server(oldB)] } };
  const primary = await startPrimary({
    config: validateConfig(file),
    workers: 2,
    logger: pino({ level: 'silent' }),
    loadConfig: () => validateConfig(file),
  });
  const url = `http://127.0.0.1:${base.server.httpPort}`;
  // Each request on a new connection: the primary spreads them over both shards.
  const servedBy = async (n: number): Promise<string[]> => {
    const out: string[] = [];
    for (let i = 0; i < n; i++) {
      const agent = new Agent({ connections: 1 });
      const res = await request(`${url}/x`, { dispatcher: agent });
      await res.body.text();
      assert.equal(res.statusCode, 200);
      out.push(String(res.headers['x-backend']));
      await agent.close();
    }
    return out;
  };
  const restarted = async (shard: number, count: bigint) => {
    const deadline = Date.now() + 20_000;
    while (!(primary.supervisor.alive(shard) && primary.state.globalCounter(G_SHARD_RESTARTS) === count)) {
      assert.ok(Date.now() < deadline, `shard ${shard} came back`);
      await sleep(20);
    }
  };
  try {
    assert.deepEqual([...new Set(await servedBy(4))], ['old']);

    // 1. Reload, then a shard dies and is restarted: it starts with generation 2.
    file = { ...base, loadBalancer: { backendServers: [server(newB)] } };
    const r2 = await primary.reload();
    assert.ok(r2.ok && r2.generation === 2 && r2.shardErrors.length === 0, JSON.stringify(r2));
    await primary.supervisor.kill(1);
    await restarted(1, 1n);
    assert.equal(primary.supervisor.shards[1].generation, 2);
    assert.deepEqual([...new Set(await servedBy(8))], ['new'], 'both shards, the restarted one too, serve the reloaded list');

    // 2. A shard that is starting while a reload is applied (not ready: it cannot take it) catches up once ready.
    await primary.supervisor.kill(0);
    const deadline = Date.now() + 20_000;
    while (!(primary.supervisor.shards[0].worker !== undefined && !primary.supervisor.shards[0].ready)) {
      assert.ok(Date.now() < deadline, 'shard 0 is being restarted');
      await sleep(5);
    }
    file = { ...base, loadBalancer: { backendServers: [server(third)] } };
    const r3 = await primary.reload();
    assert.ok(r3.ok && r3.generation === 3, JSON.stringify(r3));
    await restarted(0, 2n);
    const caughtUp = Date.now() + 10_000;
    while (primary.supervisor.shards[0].generation !== 3) {
      assert.ok(Date.now() < caughtUp, `shard 0 runs generation 3 (runs ${primary.supervisor.shards[0].generation})`);
      await sleep(20);
    }
    assert.deepEqual([...new Set(await servedBy(8))], ['third']);

    // 3. Two reloads asked for at once run one after the other.
    file = { ...base, loadBalancer: { backendServers: [server(oldB), server(third)] } };
    const [r4, r5] = await Promise.all([primary.reload(), primary.reload()]);
    assert.ok(r4.ok && r5.ok);
    assert.deepEqual([r4.generation, r5.generation], [4, 5]);
    assert.deepEqual(r4.ok ? r4.added : [], ['old'], 'a re-added backend is new again');
    assert.deepEqual(r5.ok ? r5.added : [], []);
    const stats = (await (await request(`${url}/stats`)).body.json()) as { config: { generation: number }; backends: Array<{ id: string; requests: number }> };
    assert.equal(stats.config.generation, 5);
    assert.equal(stats.backends.find((b) => b.id === 'old')?.requests, 0, 'its counters start from zero');
    assert.equal(stats.backends.find((b) => b.id === 'third')?.requests, third.arrivals.length, 'a kept backend keeps counting');
  } finally {
    await primary.stop();
    for (const b of [oldB, newB, third]) await b.close();
  }
});
