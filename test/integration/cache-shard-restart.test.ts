// The response cache across a shard restart: the primary hands the same CacheSharedState buffer and store to
// the restarted shard (ShardInit.cacheBuffer), so it answers from what the other shards stored and the
// counters in /stats go on from where they were. Runs the real primary in this process so the test can kill
// one worker thread; the backend is the raw recording backend.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { request, Agent } from 'undici';
import pino from 'pino';
import { startPrimary } from '../../src/primary/primary.ts';
import { validateConfig } from '../../src/config/load.ts';
import { G_SHARD_RESTARTS, SC_REQUESTS } from '../../src/shared/state.ts';
import { freePort } from '../../bench/lib/procs.ts';
import { startRawBackend } from '../support/raw-backend.ts';

const CSS = 'body { color: #123456; }\n';
const CACHEABLE = `HTTP/1.1 200 OK\r\ncontent-type: text/css\r\ncache-control: public, max-age=300\r\netag: "k1"\r\ncontent-length: ${CSS.length}\r\n\r\n${CSS}`;

test('a restarted shard gets the cache: it serves what the others stored, and the counters carry on', { timeout: 60_000 }, async () => {
  const backend = await startRawBackend({ respond: () => CACHEABLE });
  const config = validateConfig({
    server: { httpPort: await freePort(), httpsPort: await freePort(), bindAddress: '127.0.0.1', shutdownTimeout: '2s' },
    tls: { stateDir: path.join(await mkdtemp(path.join(tmpdir(), 'quiclb-cache-restart-')), 'state') },
    quic: { enabled: false },
    healthCheck: { enabled: false },
    logging: { level: 'silent', accessLog: false },
    moodle: { enableCaching: true },
    loadBalancer: { sessionPersistence: false, backendServers: [{ id: 'raw', host: '127.0.0.1', port: backend.port }] },
  });
  const primary = await startPrimary({ config, workers: 2, logger: pino({ level: 'silent' }) });
  const url = `http://127.0.0.1:${config.server.httpPort}/theme/styles.css`;
  // A fresh connection per request: the primary spreads them over the shards (ties round robin).
  const get = async () => {
    const agent = new Agent({ connections: 1 });
    try {
      const res = await request(url, { dispatcher: agent });
      return { status: res.statusCode, body: await res.body.text() };
    } finally {
      await agent.close();
    }
  };
  const stats = async () => (await (await request(`http://127.0.0.1:${config.server.httpPort}/stats`)).body.json()) as any;
  try {
    for (let i = 0; i < 4; i++) assert.deepEqual(await get(), { status: 200, body: CSS });
    const before = (await stats()).cache;
    assert.deepEqual([before.misses, before.hits, before.entries], [1, 3, 1]);

    await primary.supervisor.kill(1);
    const deadline = Date.now() + 15_000;
    while (!(primary.supervisor.alive(1) && primary.state.globalCounter(G_SHARD_RESTARTS) === 1n)) {
      assert.ok(Date.now() < deadline, 'shard 1 came back');
      await new Promise((r) => setTimeout(r, 50));
    }
    const shard1Before = primary.state.shardCounter(1, SC_REQUESTS);
    for (let i = 0; i < 6; i++) assert.deepEqual(await get(), { status: 200, body: CSS });
    assert.ok(primary.state.shardCounter(1, SC_REQUESTS) > shard1Before, 'the restarted shard served some of them');
    assert.equal(backend.requests.length, 1, 'all from the store');
    const after = (await stats()).cache;
    assert.equal(after.hits, before.hits + 6, 'the same counters, not a new set');
    assert.equal(after.misses, 1);
  } finally {
    await primary.stop();
    await backend.close();
  }
});
