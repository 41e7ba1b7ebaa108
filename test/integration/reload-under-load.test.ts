// SIGHUP while HTTP/1.1, HTTP/2 and HTTP/3 clients keep requests in flight, and the reload removes one backend
// (with a slow request still running on it) and adds another: no request fails, the new backend takes
// traffic on every protocol, the removed one gets nothing once the reload is applied and its slow request
// still completes, the kept backend's counters carry on, a client pinned to the kept backend stays there,
// and the removed backend's slot is freed only after its last request ended.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { request } from 'undici';
import { startQuiclb, type QuiclbProcess } from '../support/quiclb-process.ts';
import { startIdBackend, type IdBackend } from '../support/id-backend.ts';
import { startProtocolLoad, servedBy, type LoadProtocol } from '../support/protocol-load.ts';
import { getJson } from '../support/http-client.ts';
import { affinityToken } from '../../src/balancer/affinity.ts';

const PROTOCOLS: LoadProtocol[] = ['HTTP/1.1', 'HTTP/2', 'HTTP/3'];
const SLOW_MS = 2500;

let lb: QuiclbProcess | undefined;
const backends: IdBackend[] = [];

after(async () => {
  await lb?.stop();
  for (const b of backends) await b.close();
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(what: string, cond: () => boolean, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(25);
  }
}

async function rewriteConfig(file: string, change: (c: any) => void): Promise<void> {
  const c = JSON.parse(await readFile(file, 'utf8'));
  change(c);
  await writeFile(file, JSON.stringify(c, null, 2));
}

test('SIGHUP under HTTP/1.1, HTTP/2 and HTTP/3 load: a backend added and one removed, no request fails', { timeout: 90_000 }, async () => {
  const [a, b, c] = await Promise.all(['a', 'b', 'c'].map((id) => startIdBackend(id)));
  backends.push(a, b, c);
  const server = (x: IdBackend) => ({ id: x.id, host: '127.0.0.1', port: x.port });
  lb = await startQuiclb({
    config: {
      // No active probes: every request a backend sees is a client's, so its count can be compared with /stats.
      healthCheck: { enabled: false },
      logging: { accessLog: false },
      loadBalancer: { strategy: 'round_robin', sessionPersistence: true, backendServers: [server(a), server(b)] },
    },
    workers: 2,
  });
  const proc = lb;
  const base = `http://127.0.0.1:${proc.httpPort}`;
  const load = await startProtocolLoad({ httpPort: proc.httpPort, httpsPort: proc.httpsPort });
  try {
    await until('traffic on a and b over every protocol', () =>
      PROTOCOLS.every((p) => (servedBy(load.tally, p).get('a') ?? 0) >= 10 && (servedBy(load.tally, p).get('b') ?? 0) >= 10),
    );

    // A request pinned to a (its affinity cookie) that is still running when the reload removes a.
    const slow = request(`${base}/slow?ms=${SLOW_MS}`, { headers: { cookie: `QUICLB_AFFINITY=${affinityToken({ id: 'a' })}` } }).then(async (res) => ({
      status: res.statusCode,
      body: await res.body.text(),
      doneWall: Date.now(),
    }));
    await until('the slow request at a', () => a.arrivals.some((r) => r.path.startsWith('/slow')));
    const slowArrival = a.arrivals.find((r) => r.path.startsWith('/slow'))!;

    await rewriteConfig(proc.configFile, (cfg) => {
      cfg.loadBalancer.backendServers = [server(b), server(c)];
    });
    proc.child.kill('SIGHUP');
    const reloaded = await proc.waitForLog((e) => e.msg === 'configuration reloaded');
    const appliedAt = performance.now();
    assert.equal(reloaded.generation, 2);
    assert.deepEqual(reloaded.added, ['c']);
    assert.deepEqual(reloaded.removed, ['a']);
    assert.deepEqual(reloaded.needsRestart, []);

    const servedAfter = (p: LoadProtocol, id: string) => load.tally.served.filter((s) => s.protocol === p && s.backend === id && s.at > appliedAt).length;
    await until('traffic on c over every protocol after the reload', () => PROTOCOLS.every((p) => servedAfter(p, 'c') >= 10 && servedAfter(p, 'b') >= 10));

    const slowRes = await slow;
    assert.equal(slowRes.status, 200, 'the request in flight to the removed backend completes');
    assert.equal(slowRes.body, 'a\n');

    // The slot is freed once a's last request ended, never before.
    const freed = await proc.waitForLog((e) => e.msg === 'removed backend: its last requests ended; slot freed' && e.backend === 'a');
    assert.ok((freed.time as number) >= slowArrival.wall + SLOW_MS - 20, `slot freed ${(freed.time as number) - slowArrival.wall} ms after the slow request reached a`);

    // A client pinned to the kept backend stays on it.
    for (let i = 0; i < 4; i++) {
      const res = await request(`${base}/pinned`, { headers: { cookie: `QUICLB_AFFINITY=${affinityToken({ id: 'b' })}` } });
      await res.body.text();
      assert.equal(res.headers['x-backend'], 'b');
    }
    await sleep(300);
  } finally {
    await load.stop();
  }

  assert.deepEqual(load.tally.failures, [], 'no request failed across the reload');
  const appliedWall = (proc.logs().find((e) => e.msg === 'configuration reloaded')!.time as number);
  const lateAtA = a.arrivals.filter((r) => r.wall > appliedWall);
  assert.deepEqual(lateAtA, [], 'the removed backend got no request once the reload was applied');
  for (const p of PROTOCOLS) assert.ok((servedBy(load.tally, p).get('c') ?? 0) > 0, `c served ${p}`);

  const stats = (await getJson(`${base}/stats`)).body;
  assert.equal(stats.config.generation, 2);
  assert.equal(stats.config.failedReloads, 0);
  assert.deepEqual(stats.config.needsRestart, []);
  assert.deepEqual(stats.backends.map((x: { id: string }) => x.id), ['b', 'c']);
  const statOf = (id: string) => stats.backends.find((x: { id: string }) => x.id === id);
  // b's counter kept counting through the reload: it equals every request b ever received, before and after.
  assert.equal(statOf('b').requests, b.arrivals.length, 'the kept backend keeps its counters');
  assert.ok(b.arrivals.filter((r) => r.wall < appliedWall).length > 0);
  assert.equal(statOf('c').requests, c.arrivals.length, 'the new backend counts from zero');
  assert.equal(statOf('b').activeConnections, 0);
  assert.equal(stats.shardRestarts, 0);
  assert.equal(stats.uncaughtErrors, 0);
});
