// A shard that dies is restarted by the primary, counted in /stats, and the other shard keeps serving.
// Runs the real primary in this process (startPrimary) so the test can kill one worker thread.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { request, Agent } from 'undici';
import pino from 'pino';
import { Writable } from 'node:stream';
import { startPrimary } from '../../src/primary/primary.ts';
import { validateConfig } from '../../src/config/load.ts';
import { startDemoBackend } from '../../src/demo/backends.ts';
import { S_ALIVE, G_SHARD_RESTARTS } from '../../src/shared/state.ts';
import { freePort } from '../../bench/lib/procs.ts';
import { execFileP } from '../support/http-client.ts';

test('a killed shard is restarted and counted; the other shard keeps its connection', { timeout: 60_000 }, async () => {
  const backend = await startDemoBackend('b1', 0);
  const config = validateConfig({
    server: { httpPort: await freePort(), httpsPort: await freePort(), bindAddress: '127.0.0.1', shutdownTimeout: '2s' },
    tls: { stateDir: path.join(await mkdtemp(path.join(tmpdir(), 'quiclb-restart-')), 'state') },
    quic: { enabled: false },
    healthCheck: { enabled: false },
    logging: { level: 'silent', accessLog: false },
    loadBalancer: { backendServers: [{ id: 'b1', host: '127.0.0.1', port: backend.port }] },
  });
  const primary = await startPrimary({ config, workers: 2, logger: pino({ level: 'silent' }) });
  const url = `http://127.0.0.1:${config.server.httpPort}/`;
  try {
    // Two keep-alive connections: least-connections dispatch puts one on each shard.
    const a = new Agent({ connections: 1, pipelining: 1 });
    const b = new Agent({ connections: 1, pipelining: 1 });
    const get = async (agent: Agent) => {
      const res = await request(url, { dispatcher: agent });
      await res.body.text();
      return res.statusCode;
    };
    assert.equal(await get(a), 200);
    assert.equal(await get(b), 200);
    assert.equal(primary.state.shardGauge(0, S_ALIVE) + primary.state.shardGauge(1, S_ALIVE), 2);
    await primary.supervisor.kill(1);
    const deadline = Date.now() + 15_000;
    while (!(primary.supervisor.alive(1) && primary.state.globalCounter(G_SHARD_RESTARTS) === 1n)) {
      assert.ok(Date.now() < deadline, 'shard 1 came back');
      await new Promise((r) => setTimeout(r, 50));
    }
    // Whichever connection lived on shard 0 still works; new connections work on both shards.
    const results = await Promise.allSettled([get(a), get(b)]);
    assert.ok(results.some((r) => r.status === 'fulfilled' && r.value === 200));
    const fresh = await Promise.all(Array.from({ length: 4 }, () => get(new Agent({ connections: 1 }))));
    assert.deepEqual(fresh, [200, 200, 200, 200]);
    const stats = await request(`http://127.0.0.1:${config.server.httpPort}/stats`);
    const body = (await stats.body.json()) as { shardRestarts: number; shards: Array<{ index: number; requests: number }> };
    assert.equal(body.shardRestarts, 1);

  } finally {
    await primary.stop();
    await backend.close();
  }
});

test('a shard killed repeatedly backs off; after a healthy run its next restart is fast again', { timeout: 60_000 }, async () => {
  const backend = await startDemoBackend('b1', 0);
  const config = validateConfig({
    server: { httpPort: await freePort(), httpsPort: await freePort(), bindAddress: '127.0.0.1', shutdownTimeout: '2s' },
    tls: { stateDir: path.join(await mkdtemp(path.join(tmpdir(), 'quiclb-backoff-')), 'state') },
    quic: { enabled: false },
    healthCheck: { enabled: false },
    logging: { level: 'silent', accessLog: false },
    loadBalancer: { backendServers: [{ id: 'b1', host: '127.0.0.1', port: backend.port }] },
  });
  // The supervisor's own log says which delay it chose for each restart.
  const restarts: Array<{ restartInMs: number; crashStreak: number; ranMs: number }> = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const line of chunk.toString().split('\n').filter(Boolean)) {
        const e = JSON.parse(line);
        if (e.msg === 'shard exited; restarting it') restarts.push(e);
      }
      cb();
    },
  });
  const healthyAfterMs = 1500;
  const primary = await startPrimary({
    config,
    workers: 1,
    logger: pino({ level: 'info' }, sink),
    restartPolicy: { backoffMs: [50, 300, 900], healthyAfterMs },
  });
  const killAndWait = async (n: number) => {
    await primary.supervisor.kill(0);
    const deadline = Date.now() + 15_000;
    while (!(primary.supervisor.alive(0) && restarts.length === n)) {
      assert.ok(Date.now() < deadline, `shard 0 came back after kill ${n}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  };
  try {
    // Killed as soon as it is back: each restart waits one step longer, the last step repeats.
    for (let n = 1; n <= 4; n++) await killAndWait(n);
    assert.deepEqual(restarts.map((r) => r.restartInMs), [50, 300, 900, 900]);
    assert.deepEqual(restarts.map((r) => r.crashStreak), [1, 2, 3, 4]);
    // Now it runs longer than healthyAfterMs: the streak is over, the next restart takes the first step.
    await new Promise((r) => setTimeout(r, healthyAfterMs + 300));
    await killAndWait(5);
    assert.equal(restarts[4].restartInMs, 50, JSON.stringify(restarts[4]));
    assert.equal(restarts[4].crashStreak, 1);
    assert.ok(restarts[4].ranMs >= healthyAfterMs, `ran ${restarts[4].ranMs} ms`);
    const stats = await request(`http://127.0.0.1:${config.server.httpPort}/stats`);
    const body = (await stats.body.json()) as { shardRestarts: number };
    assert.equal(body.shardRestarts, 5, 'every restart still counted');
  } finally {
    await primary.stop();
    await backend.close();
  }
});

test('short sequential connections spread over every shard (least connections, ties round robin)', { timeout: 60_000 }, async () => {
  const backend = await startDemoBackend('b1', 0);
  const config = validateConfig({
    server: { httpPort: await freePort(), httpsPort: await freePort(), bindAddress: '127.0.0.1', shutdownTimeout: '2s' },
    tls: { stateDir: path.join(await mkdtemp(path.join(tmpdir(), 'quiclb-spread-')), 'state') },
    quic: { enabled: false },
    healthCheck: { enabled: false },
    logging: { level: 'silent', accessLog: false },
    loadBalancer: { backendServers: [{ id: 'b1', host: '127.0.0.1', port: backend.port }] },
  });
  const primary = await startPrimary({ config, workers: 3, logger: pino({ level: 'silent' }) });
  try {
    // curl opens and closes one connection per run, so every accept sees idle shards.
    for (let i = 0; i < 9; i++) await execFileP('curl', ['-s', '-o', '/dev/null', `http://127.0.0.1:${config.server.httpPort}/`]);
    const stats = await request(`http://127.0.0.1:${config.server.httpPort}/stats`);
    const body = (await stats.body.json()) as { shards: Array<{ index: number; requests: number }> };
    assert.ok(body.shards.every((sh) => sh.requests >= 2), JSON.stringify(body.shards));
  } finally {
    await primary.stop();
    await backend.close();
  }
});
