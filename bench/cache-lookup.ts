// What the shared response cache (src/cache) costs per request, measured through its public API from 1 and
// 2 worker threads at once on one store file: a hit (lookup + reading a 30 KiB body), a miss (lookup,
// fill lock taken and released), and a store (a 30 KiB response written through the tee and committed).
// Run: node bench/cache-lookup.ts [hitsPerThread]   (prints µs per operation and operations/s)
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { prepareCacheStore, ResponseCache } from '../src/cache/cache.ts';
import type { CacheSettings } from '../src/cache/settings.ts';
import { CacheSharedState } from '../src/shared/cache-state.ts';
import type { BodySink, FrontRequest } from '../src/shared/http-types.ts';

/** Wall and thread-CPU microseconds per operation (CPU time is what other jobs on the host do not inflate). */
interface Cost {
  us: number;
  cpu: number;
}
const fmt = (c: Cost) => `${c.us.toFixed(1)} (${c.cpu.toFixed(1)})`;

const ENTRIES = 200;
const BODY = Buffer.alloc(30 * 1024, 'a');
const HEADERS: Array<[string, string]> = [
  ['content-type', 'text/css; charset=utf-8'],
  ['cache-control', 'public, max-age=604800, immutable'],
  ['etag', '"abcdef0123456789"'],
];
const NULL_SINK: BodySink = { write: () => true, end: () => {}, onDrain: (cb) => void setImmediate(cb) };

type Op = 'hit' | 'miss' | 'store';

function req(path: string): FrontRequest {
  return {
    protocol: 'HTTP/2',
    method: 'GET',
    scheme: 'https',
    authority: 'moodle.example.edu',
    path,
    headers: [['accept-encoding', 'gzip, deflate, br, zstd'], ['cookie', 'MoodleSession=abc']],
    body: null,
    remoteAddress: '127.0.0.1',
    remotePort: 1,
    localPort: 443,
    connectionKey: 'b',
    shard: 0,
  };
}

async function store(cache: ResponseCache, path: string): Promise<void> {
  const l = await cache.lookup(req(path));
  if (l.kind !== 'fetch') throw new Error(`expected a miss for ${path}`);
  const sink = l.fill.tee(200, HEADERS, NULL_SINK);
  sink.end(BODY);
  l.fill.release();
}

async function run(settings: CacheSettings, buffer: SharedArrayBuffer, op: Op, n: number, tag: string): Promise<Cost> {
  const cache = ResponseCache.open(settings, buffer);
  const t0 = performance.now();
  const c0 = process.threadCpuUsage();
  for (let i = 0; i < n; i++) {
    if (op === 'hit') {
      const l = await cache.lookup(req(`/theme/styles.php/${i % ENTRIES}`));
      if (l.kind !== 'hit') throw new Error('expected a hit');
      let bytes = 0;
      for await (const c of l.hit.body()) bytes += c.byteLength;
      if (bytes !== BODY.byteLength) throw new Error('short body');
    } else if (op === 'miss') {
      const l = await cache.lookup(req(`/course/view.php?id=${tag}-${i}`));
      if (l.kind !== 'fetch') throw new Error('expected a miss');
      l.fill.release();
    } else {
      await store(cache, `/pluginfile.php/${tag}/${i}`);
    }
  }
  const us = ((performance.now() - t0) * 1000) / n;
  const c = process.threadCpuUsage(c0);
  const cpu = (c.user + c.system) / n;
  cache.close();
  return { us, cpu };
}

function inThreads(settings: CacheSettings, buffer: SharedArrayBuffer, op: Op, threads: number, n: number, round: number): Promise<Cost[]> {
  return Promise.all(
    Array.from({ length: threads }, (_, t) => {
      const w = new Worker(new URL(import.meta.url), { workerData: { settings, buffer, op, n, tag: `${round}-${t}` } });
      return new Promise<Cost>((resolve, reject) => {
        w.once('message', resolve);
        w.once('error', reject);
      }).finally(() => w.terminate());
    }),
  );
}

if (!isMainThread) {
  const { settings, buffer, op, n, tag } = workerData as { settings: CacheSettings; buffer: SharedArrayBuffer; op: Op; n: number; tag: string };
  parentPort!.postMessage(await run(settings, buffer, op, n, tag));
} else {
  const hits = Number(process.argv[2] ?? 20_000);
  const dir = mkdtempSync(join(tmpdir(), 'quiclb-cache-bench-'));
  try {
    const settings: CacheSettings = { enabled: true, path: join(dir, 'cache.sqlite'), maxSize: 1024 ** 3, maxEntrySize: 8 * 1024 ** 2, lockTimeoutMs: 5000 };
    const shared = new CacheSharedState();
    prepareCacheStore(settings, shared);
    const cache = ResponseCache.open(settings, shared.buffer);
    for (let i = 0; i < ENTRIES; i++) await store(cache, `/theme/styles.php/${i}`);
    cache.close();
    console.log(`src/cache through its API, ${BODY.byteLength / 1024} KiB bodies, ${ENTRIES} stored entries`);
    console.log('operation   ops/thread   1 thread µs (CPU)   2 threads µs (CPU), each        2 threads ops/s');
    let round = 0;
    for (const [op, n] of [['hit', hits], ['miss', hits / 10], ['store', hits / 10]] as Array<[Op, number]>) {
      await inThreads(settings, shared.buffer, op, 1, Math.min(n, 1000), round++); // warm-up
      const [one] = await inThreads(settings, shared.buffer, op, 1, n, round++);
      const two = await inThreads(settings, shared.buffer, op, 2, n, round++);
      const rate = two.reduce((s, c) => s + 1e6 / c.us, 0);
      console.log(
        `${op.padEnd(9)}   ${String(n).padStart(10)}   ${fmt(one).padStart(15)}   ${two.map(fmt).join(' / ').padStart(27)}   ${Math.round(rate).toString().padStart(15)}`,
      );
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
