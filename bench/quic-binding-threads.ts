// How many threads of one process can use the quiche napi binding at once: the installed original against
// the thread-safe copy (src/quic/quiche-binding-file.ts), in the same script. Each child process starts K
// worker threads (optionally the main thread loads the binding first) that call Header.fromSlice(Uint8Array)
// in a loop; every call makes napi-rs take a reference on the argument and release it when the call ends,
// which is where napi-rs 2.10.1 goes wrong off the first thread. Prints, per configuration and file, how
// many of R runs exited cleanly (a crash is SIGSEGV/SIGABRT/SIGTRAP in the child).
// Run: node bench/quic-binding-threads.ts [runs]
// The child form (also used by test/integration/quic-binding-threads.test.ts):
//   node bench/quic-binding-threads.ts --child THREADS main|nomain FILE [CALLS]
import { spawnSync } from 'node:child_process';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import { createRequire } from 'node:module';
import { prepareQuicheBinding } from '../src/quic/quiche-binding-file.ts';

async function hammer(file: string, calls: number): Promise<void> {
  const q = createRequire(import.meta.url)(file);
  const buf = Buffer.alloc(1200);
  buf[0] = 0xc0;
  buf[4] = 1;
  buf[5] = 8;
  for (let j = 0; j < calls; j++) {
    try {
      q.Header.fromSlice(buf, 20);
    } catch {
      // not a valid header: irrelevant, the reference was still taken
    }
    if (j % 50_000 === 0) await new Promise((r) => setImmediate(r));
  }
}

if (!isMainThread) {
  const { file, calls } = workerData as { file: string; calls: number };
  await hammer(file, calls);
  parentPort!.postMessage('done');
} else if (process.argv[2] === '--child') {
  const threads = Number(process.argv[3]);
  const file = process.argv[5];
  const calls = Number(process.argv[6] ?? 300_000);
  if (process.argv[4] === 'main') createRequire(import.meta.url)(file);
  await Promise.all(
    Array.from({ length: threads }, () => {
      const w = new Worker(new URL(import.meta.url), { workerData: { file, calls } });
      return new Promise((r) => w.once('message', r)).then(() => w.terminate());
    }),
  );
  process.exit(0);
} else {
  const runs = Number(process.argv[2] ?? 5);
  const copy = prepareQuicheBinding();
  if (!copy.threadSafe) {
    console.error(`no thread-safe copy of the binding: ${copy.detail}`);
    process.exit(1);
  }
  const original = createRequire(import.meta.url).resolve('@matrixai/quic-linux-x64');
  const configs: Array<[number, 'main' | 'nomain']> = [
    [2, 'nomain'],
    [2, 'main'],
    [3, 'nomain'],
    [4, 'nomain'],
    [8, 'nomain'],
  ];
  console.log(`node ${process.version}, 300000 calls per thread, ${runs} runs per configuration and file`);
  console.log('threads using quiche          original   thread-safe copy');
  for (const [threads, main] of configs) {
    const clean = [original, copy.path].map((file) => {
      let ok = 0;
      for (let i = 0; i < runs; i++) {
        const r = spawnSync(process.execPath, [new URL(import.meta.url).pathname, '--child', String(threads), main, file], {
          timeout: 120_000,
          stdio: 'ignore',
        });
        if (r.status === 0) ok++;
      }
      return `${ok}/${runs}`;
    });
    const total = threads + (main === 'main' ? 1 : 0);
    const label = `${total} (${threads} workers${main === 'main' ? ' + main' : ''})`;
    console.log(`${label.padEnd(30)}${clean[0].padEnd(11)}${clean[1]}`);
  }
}
