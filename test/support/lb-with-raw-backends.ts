// quiclb in front of raw recording backends (test/support/raw-backend.ts), for the attack tests in
// test/security: every test can then check what the backends received byte for byte, and that no shard
// restarted and no backend was marked down by the client's misbehaviour.
import assert from 'node:assert/strict';
import { startRawBackend, type RawBackend, type RawBackendOptions } from './raw-backend.ts';
import { startQuiclb, type QuiclbProcess, type StartOptions } from './quiclb-process.ts';
import { getJson } from './http-client.ts';

export interface LbWithRawBackends {
  lb: QuiclbProcess;
  backends: RawBackend[];
  stats(): Promise<any>;
  /** Asserts no shard restarted and every backend is still healthy with no passive failure streak. */
  assertUnharmed(): Promise<void>;
  stop(): Promise<void>;
}

export async function startLbWithRawBackends(
  count: number,
  backendOpts: RawBackendOptions = {},
  config: StartOptions['config'] = {},
  workers = 1,
): Promise<LbWithRawBackends> {
  const backends: RawBackend[] = [];
  for (let i = 0; i < count; i++) backends.push(await startRawBackend(backendOpts));
  const backendServers = backends.map((b, i) => ({ id: `raw-${i + 1}`, host: '127.0.0.1', port: b.port }));
  const lb = await startQuiclb({
    config: {
      healthCheck: { enabled: false, passiveFailureThreshold: 1 },
      ...config,
      loadBalancer: { sessionPersistence: false, ...(config.loadBalancer ?? {}), backendServers },
    },
    workers,
  });
  const stats = async () => (await getJson(`http://127.0.0.1:${lb.httpPort}/stats`)).body;
  return {
    lb,
    backends,
    stats,
    async assertUnharmed() {
      const s = await stats();
      assert.equal(s.shardRestarts, 0, 'no shard restarted');
      assert.equal(s.uncaughtErrors, 0, 'no exception escaped a request or connection boundary');
      for (const b of s.backends) {
        assert.equal(b.healthy, true, `backend ${b.id} still healthy`);
        assert.equal(b.errors, 0, `no failure counted against ${b.id}`);
      }
    },
    async stop() {
      await lb.stop();
      for (const b of backends) await b.close();
    },
  };
}
