// Reproduces the limit behind QUIC_MAX_SHARDS (src/quic/quiche.ts): how many threads of one process can use
// the quiche napi binding at once. Each child process starts K worker threads (optionally the main thread
// loads the binding too) that call Header.fromSlice(Uint8Array) in a loop; every such call makes napi-rs
// take and later release a reference on the argument. Prints, per configuration, how many of R runs
// exited cleanly (a crash is SIGSEGV/SIGABRT/SIGTRAP in the child).
// Run: node bench/quic-binding-threads.ts [runs]
import { spawnSync } from 'node:child_process';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import { createRequire } from 'node:module';

const CALLS = 300_000;

async function hammer(): Promise<void> {
  const q = createRequire(import.meta.url)('@matrixai/quic-linux-x64');
  const buf = Buffer.alloc(1200);
  buf[0] = 0xc0;
  buf[4] = 1;
  buf[5] = 8;
  for (let j = 0; j < CALLS; j++) {
    try {
      q.Header.fromSlice(buf, 20);
    } catch {
      // not a valid header: irrelevant, the reference was still taken
    }
    if (j % 50_000 === 0) await new Promise((r) => setImmediate(r));
  }
}

if (!isMainThread) {
  await hammer();
  parentPort!.postMessage('done');
} else if (process.argv[2] === '--child') {
  const threads = Number(process.argv[3]);
  if (process.argv[4] === 'main') createRequire(import.meta.url)('@matrixai/quic-linux-x64');
  await Promise.all(
    Array.from({ length: threads }, () => {
      const w = new Worker(new URL(import.meta.url), { workerData: {} });
      return new Promise((r) => w.once('message', r)).then(() => w.terminate());
    }),
  );
  process.exit(0);
} else {
  void workerData;
  const runs = Number(process.argv[2] ?? 5);
  const configs: Array<[number, 'main' | 'nomain']> = [
    [1, 'main'],
    [2, 'nomain'],
    [2, 'main'],
    [3, 'nomain'],
    [4, 'nomain'],
  ];
  console.log(`node ${process.version}, ${CALLS} calls per thread, ${runs} runs per configuration`);
  for (const [threads, main] of configs) {
    let ok = 0;
    for (let i = 0; i < runs; i++) {
      const r = spawnSync(process.execPath, [new URL(import.meta.url).pathname, '--child', String(threads), main], {
        timeout: 60_000,
        stdio: 'ignore',
      });
      if (r.status === 0) ok++;
    }
    const total = threads + (main === 'main' ? 1 : 0);
    console.log(`${String(total).padStart(2)} threads using quiche (${threads} workers${main === 'main' ? ' + main' : ''}): ${ok}/${runs} clean exits`);
  }
}
