// Which on-disk layout the shared response cache (src/cache) should use: the cost of one lookup plus the
// read of a 30 KiB body, from 1 and from 2 worker threads at once, each thread with its own connection to
// one store. Layouts compared in the same run:
//   sqlite-chunks  metadata row + body in a chunk table (what src/cache does: bodies stream in 256 KiB rows)
//   sqlite-inline  one row holding metadata and the whole body
//   sqlite+file    metadata row in SQLite, body in its own file (readFileSync)
//   sqlite+fileasync  the same with fs.promises.readFile (what a server that must not block would do;
//                     its CPU column misses the libuv pool threads that do the reads)
// Run: node bench/cache-layouts.ts [lookupsPerThread]   (prints µs per lookup+read and lookups/s)
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import { DatabaseSync } from 'node:sqlite';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Wall and thread-CPU microseconds per operation (CPU time is what other jobs on the host do not inflate). */
interface Cost {
  us: number;
  cpu: number;
}
const fmt = (c: Cost) => `${c.us.toFixed(1)} (${c.cpu.toFixed(1)})`;

const ENTRIES = 200;
const BODY = 30 * 1024;
const HEADERS = JSON.stringify([
  ['content-type', 'text/css; charset=utf-8'],
  ['cache-control', 'public, max-age=604800, immutable'],
  ['etag', '"abcdef0123456789"'],
  ['last-modified', 'Mon, 23 Nov 2026 10:00:00 GMT'],
]);

type Layout = 'sqlite-chunks' | 'sqlite-inline' | 'sqlite+file' | 'sqlite+fileasync';
const LAYOUTS: Layout[] = ['sqlite-chunks', 'sqlite-inline', 'sqlite+file', 'sqlite+fileasync'];

function open(file: string): DatabaseSync {
  const db = new DatabaseSync(file, { timeout: 5000 });
  db.exec('PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;');
  return db;
}

function build(dir: string): void {
  const db = open(join(dir, 'c.sqlite'));
  db.exec(`
    CREATE TABLE entries (id INTEGER PRIMARY KEY, key TEXT NOT NULL, headers TEXT NOT NULL, body BLOB);
    CREATE INDEX entries_key ON entries(key);
    CREATE TABLE chunks (entry INTEGER NOT NULL, seq INTEGER NOT NULL, data BLOB NOT NULL, PRIMARY KEY (entry, seq));
  `);
  const body = Buffer.alloc(BODY, 'a');
  const ins = db.prepare('INSERT INTO entries (key, headers, body) VALUES (?, ?, ?)');
  const chunk = db.prepare('INSERT INTO chunks (entry, seq, data) VALUES (?, 0, ?)');
  db.exec('BEGIN');
  for (let i = 0; i < ENTRIES; i++) {
    const { lastInsertRowid } = ins.run(`https://m.example/theme/styles.php/${i}`, HEADERS, body);
    chunk.run(lastInsertRowid, body);
    writeFileSync(join(dir, `${i}.body`), body);
  }
  db.exec('COMMIT');
  db.close();
}

async function run(dir: string, layout: Layout, n: number): Promise<Cost> {
  const db = open(join(dir, 'c.sqlite'));
  const meta = db.prepare('SELECT id, headers FROM entries WHERE key = ?');
  const inline = db.prepare('SELECT id, headers, body FROM entries WHERE key = ?');
  const chunk = db.prepare('SELECT data FROM chunks WHERE entry = ? AND seq = 0');
  let bytes = 0;
  const t0 = performance.now();
  const c0 = process.threadCpuUsage();
  for (let i = 0; i < n; i++) {
    const key = `https://m.example/theme/styles.php/${i % ENTRIES}`;
    if (layout === 'sqlite-inline') {
      const row = inline.get(key) as { headers: string; body: Uint8Array };
      JSON.parse(row.headers);
      bytes += row.body.byteLength;
      continue;
    }
    const row = meta.get(key) as { id: number; headers: string };
    JSON.parse(row.headers);
    if (layout === 'sqlite-chunks') bytes += (chunk.get(row.id) as { data: Uint8Array }).data.byteLength;
    else if (layout === 'sqlite+file') bytes += readFileSync(join(dir, `${row.id - 1}.body`)).byteLength;
    else bytes += (await readFile(join(dir, `${row.id - 1}.body`))).byteLength;
  }
  const us = ((performance.now() - t0) * 1000) / n;
  const c = process.threadCpuUsage(c0);
  const cpu = (c.user + c.system) / n;
  db.close();
  if (bytes !== n * BODY) throw new Error('short read');
  return { us, cpu };
}

async function threads(dir: string, layout: Layout, count: number, n: number): Promise<Cost[]> {
  return Promise.all(
    Array.from({ length: count }, () => {
      const w = new Worker(new URL(import.meta.url), { workerData: { dir, layout, n } });
      return new Promise<Cost>((resolve, reject) => {
        w.once('message', resolve);
        w.once('error', reject);
      }).finally(() => w.terminate());
    }),
  );
}

if (!isMainThread) {
  const { dir, layout, n } = workerData as { dir: string; layout: Layout; n: number };
  parentPort!.postMessage(await run(dir, layout, n));
} else {
  const n = Number(process.argv[2] ?? 20_000);
  const dir = mkdtempSync(join(tmpdir(), 'quiclb-cache-bench-'));
  try {
    build(dir);
    console.log(`lookup + read of a ${BODY / 1024} KiB body, ${n} lookups per thread, ${ENTRIES} entries`);
    console.log('layout              1 thread µs (CPU)   2 threads µs (CPU), each        2 threads lookups/s');
    for (const layout of LAYOUTS) {
      await threads(dir, layout, 1, Math.min(n, 2000)); // warm the page cache and the JIT
      const [one] = await threads(dir, layout, 1, n);
      const two = await threads(dir, layout, 2, n);
      const rate = two.reduce((s, c) => s + 1e6 / c.us, 0);
      console.log(
        `${layout.padEnd(18)}  ${fmt(one).padStart(15)}   ${two.map(fmt).join(' / ').padStart(27)}   ${Math.round(rate).toString().padStart(19)}`,
      );
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
