// The well-behaved clients of a fuzz run: one loop per protocol (HTTP/1.1 over undici, HTTP/2 over node:http2,
// HTTP/3 over bench/lib/h3-client.ts), each on its own connection, each sending a normal GET, waiting for its
// answer, pausing PAUSE_MS, and again, for as long as the fuzzers run. They run in a worker thread so that the
// fuzz clients' CPU use in the main thread does not delay their timers: a long wait here is quiclb's.
// Every answer must be a 200 within REQUEST_TIMEOUT_MS; the longest wait is the stall the run reports.
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import http2 from 'node:http2';
import { setTimeout as sleep } from 'node:timers/promises';
import { Client } from 'undici';
import { H3Connection } from '../../bench/lib/h3-client.ts';

export type NormalProtocol = 'h1' | 'h2' | 'h3';

export interface NormalClientStats {
  ok: number;
  failed: number;
  /** Longest time from sending a request to its complete 200 answer (or to its failure), ms. */
  maxMs: number;
  /** When maxMs was seen (Date.now()). */
  maxAt: number;
  /** The last few failures: what and when. */
  failures: Array<{ at: number; error: string }>;
}

interface Init {
  httpPort: number;
  httpsPort: number;
  protocols: NormalProtocol[];
}

const PAUSE_MS = 100;
const REQUEST_TIMEOUT_MS = 10_000;

function newStats(): NormalClientStats {
  return { ok: 0, failed: 0, maxMs: 0, maxAt: 0, failures: [] };
}

async function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const t = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no answer in ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([p, t]);
  } finally {
    clearTimeout(timer);
  }
}

/** One protocol's loop: `once` sends one GET on the client's connection (reconnecting when it must). */
async function loop(stats: NormalClientStats, once: (path: string) => Promise<number>, stopped: () => boolean): Promise<void> {
  let n = 0;
  while (!stopped()) {
    const started = performance.now();
    try {
      const status = await withTimeout(once(`/ok?normal=${n++}`), REQUEST_TIMEOUT_MS, 'normal GET');
      if (status !== 200) throw new Error(`status ${status}`);
      stats.ok++;
    } catch (err) {
      stats.failed++;
      stats.failures.push({ at: Date.now(), error: (err as Error).message });
      if (stats.failures.length > 10) stats.failures.shift();
    }
    const ms = performance.now() - started;
    if (ms > stats.maxMs) {
      stats.maxMs = Math.round(ms);
      stats.maxAt = Date.now();
    }
    await sleep(PAUSE_MS);
  }
}

function h1Client(port: number): { once: (path: string) => Promise<number>; close: () => Promise<void> } {
  // pipelining 1, one connection: undici reconnects by itself when quiclb closes it.
  const client = new Client(`http://127.0.0.1:${port}`, { pipelining: 1, keepAliveTimeout: 30_000 });
  return {
    once: async (path) => {
      const res = await client.request({ method: 'GET', path, headers: { host: 'moodle.example.edu' } });
      await res.body.text();
      return res.statusCode;
    },
    close: () => client.destroy(),
  };
}

function h2Client(port: number): { once: (path: string) => Promise<number>; close: () => Promise<void> } {
  let session: http2.ClientHttp2Session | undefined;
  const connect = (): http2.ClientHttp2Session => {
    if (session && !session.closed && !session.destroyed) return session;
    const s = http2.connect(`https://127.0.0.1:${port}`, { rejectUnauthorized: false });
    s.on('error', () => undefined);
    s.on('goaway', () => s.close());
    session = s;
    return s;
  };
  return {
    once: (path) =>
      new Promise<number>((resolve, reject) => {
        const s = connect();
        const req = s.request({ ':method': 'GET', ':path': path, ':authority': 'moodle.example.edu' });
        let status = 0;
        req.on('response', (h) => (status = Number(h[':status'])));
        req.on('error', reject);
        req.on('data', () => undefined);
        req.on('end', () => resolve(status));
        req.end();
      }),
    close: async () => {
      session?.destroy();
    },
  };
}

function h3Client(port: number): { once: (path: string) => Promise<number>; close: () => Promise<void> } {
  let conn: H3Connection | undefined;
  return {
    once: async (path) => {
      if (conn === undefined || !conn.isOpen) {
        conn?.close();
        conn = await H3Connection.connect({ host: '127.0.0.1', port, connectTimeoutMs: REQUEST_TIMEOUT_MS });
      }
      const res = await conn.request({ path, authority: 'moodle.example.edu', timeoutMs: REQUEST_TIMEOUT_MS });
      return res.status;
    },
    close: async () => conn?.close(),
  };
}

function runWorker(init: Init): void {
  const port = parentPort!;
  let stop = false;
  const all: Partial<Record<NormalProtocol, NormalClientStats>> = {};
  const clients: Array<{ close: () => Promise<void> }> = [];
  const loops: Array<Promise<void>> = [];
  for (const p of init.protocols) {
    const stats = newStats();
    all[p] = stats;
    const c = p === 'h1' ? h1Client(init.httpPort) : p === 'h2' ? h2Client(init.httpsPort) : h3Client(init.httpsPort);
    clients.push(c);
    loops.push(loop(stats, c.once, () => stop));
  }
  const report = setInterval(() => port.postMessage({ type: 'stats', stats: all }), 500);
  port.on('message', (msg: { type: string }) => {
    if (msg.type !== 'stop') return;
    stop = true;
    void Promise.all(loops).then(async () => {
      clearInterval(report);
      for (const c of clients) await c.close().catch(() => undefined);
      port.postMessage({ type: 'stopped', stats: all });
    });
  });
}

if (!isMainThread && (workerData as { normalClients?: Init } | undefined)?.normalClients) {
  runWorker((workerData as { normalClients: Init }).normalClients);
}

export interface NormalClients {
  /** The latest numbers (updated every 500 ms). */
  stats(): Partial<Record<NormalProtocol, NormalClientStats>>;
  /** Stops the loops after their request in flight and returns the final numbers. */
  stop(): Promise<Partial<Record<NormalProtocol, NormalClientStats>>>;
}

export function startNormalClients(httpPort: number, httpsPort: number, protocols: NormalProtocol[]): NormalClients {
  const worker = new Worker(new URL(import.meta.url), { workerData: { normalClients: { httpPort, httpsPort, protocols } } });
  let latest: Partial<Record<NormalProtocol, NormalClientStats>> = {};
  let onStopped: ((s: Partial<Record<NormalProtocol, NormalClientStats>>) => void) | undefined;
  worker.on('message', (msg: { type: string; stats: Partial<Record<NormalProtocol, NormalClientStats>> }) => {
    latest = msg.stats;
    if (msg.type === 'stopped') onStopped?.(msg.stats);
  });
  worker.on('error', (err) => {
    for (const p of protocols) {
      const s = (latest[p] ??= newStats());
      s.failed++;
      s.failures.push({ at: Date.now(), error: `normal-client worker failed: ${err.message}` });
    }
    onStopped?.(latest);
  });
  return {
    stats: () => latest,
    stop: () =>
      new Promise((resolve) => {
        const timer = setTimeout(() => {
          void worker.terminate();
          resolve(latest);
        }, REQUEST_TIMEOUT_MS + 5000);
        onStopped = (s) => {
          clearTimeout(timer);
          void worker.terminate();
          resolve(s);
        };
        worker.postMessage({ type: 'stop' });
      }),
  };
}
