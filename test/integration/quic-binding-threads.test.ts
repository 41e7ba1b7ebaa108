// HTTP/3 on every shard. The installed quiche binding crashes a process when three or more of its threads
// use it (napi-rs 2.10.1 releases argument references on the wrong isolate; `node
// bench/quic-binding-threads.ts` measures it); quiclb loads a thread-safe copy (src/quic/quiche-binding-file.ts).
// Here: five threads hammer the copy, and `quiclb start --workers 4` serves HTTP/3 on all four shards.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { prepareQuicheBinding } from '../../src/quic/quiche-binding-file.ts';
import { startPhpBackends } from '../support/php-backends.ts';
import type { PhpBackendSet } from '../support/php-backends.ts';
import { startQuiclb, ROOT } from '../support/quiclb-process.ts';
import type { QuiclbProcess } from '../support/quiclb-process.ts';
import { gtlsclient } from '../support/quic-harness.ts';
import { getJson } from '../support/http-client.ts';

let php: PhpBackendSet;
let lb: QuiclbProcess;

before(async () => {
  php = await startPhpBackends(2);
  const backendServers = php.backends.map((b) => ({ id: b.id, host: b.host, port: b.port }));
  lb = await startQuiclb({ config: { loadBalancer: { backendServers } }, workers: 4 });
});

after(async () => {
  await lb?.stop();
  await php?.stop();
});

test('the thread-safe copy survives the main thread and four workers calling it at once', { timeout: 120_000 }, () => {
  const copy = prepareQuicheBinding();
  assert.ok(copy.threadSafe, copy.detail);
  const r = spawnSync(process.execPath, [path.join(ROOT, 'bench/quic-binding-threads.ts'), '--child', '4', 'main', copy.path, '200000'], {
    timeout: 110_000,
    encoding: 'utf8',
  });
  assert.equal(r.signal, null, `child killed by ${r.signal}: ${r.stderr.slice(-2000)}`);
  assert.equal(r.status, 0, r.stderr.slice(-2000));
});

test('quiclb --workers 4: HTTP/3 connections land on all four shards and their requests complete', { timeout: 60_000 }, async () => {
  const dirs = await Promise.all(Array.from({ length: 8 }, () => mkdtemp(path.join(tmpdir(), 'quiclb-h3w4-'))));
  // Eight clients whose requests wait 1.5 s on PHP: all are in flight at once, so least-connections
  // must use every shard, and /stats sees them there.
  const runs = dirs.map((d, i) => gtlsclient(lb.httpsPort, [`/slow.php?ms=1500&c=${i}`], [`--download=${d}`], 30_000));
  let perShard: number[] = [];
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    const stats = (await getJson(`http://127.0.0.1:${lb.httpPort}/stats`)).body as { shards: Array<{ quicConnections: number }> };
    perShard = stats.shards.map((s) => s.quicConnections);
    if (perShard.length === 4 && perShard.every((n) => n > 0)) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.deepEqual(perShard.map((n) => n > 0), [true, true, true, true], `QUIC connections per shard: ${perShard}`);
  const results = await Promise.all(runs);
  for (const [i, r] of results.entries()) {
    assert.equal(r.code, 0, r.stderr.slice(-1500));
    const body = JSON.parse(await readFile(path.join(dirs[i], `slow.php?ms=1500&c=${i}`), 'utf8'));
    assert.equal(body.slept_ms, 1500);
  }
  assert.ok(!lb.logs().some((l) => /HTTP\/3 runs on shard 0 only/.test(String(l.msg))), 'no fallback to one QUIC shard');
  assert.equal(lb.logs().find((l) => l.msg === 'quiclb ready')?.quicShards, 4);
});
