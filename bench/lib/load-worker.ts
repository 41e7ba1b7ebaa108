// Load generator, run in a piscina worker thread (one task = one worker's share of one measurement).
// Closed loop (rate 0): `concurrency` lanes, each sends its next request when the previous answers; latency is
// measured from send to the end of the response body. Fixed rate: request i is due at start + i/rate; latency is
// measured from that intended send time, not from when it actually left, so a stalled server cannot hide its
// queueing delay by slowing the client down (coordinated omission, Gil Tene's "How NOT to measure latency").
// HTTP/1.1 and HTTP/2 go through undici; HTTP/3 through bench/lib/h3-client.ts.
import { Client } from 'undici';
import * as hdr from 'hdr-histogram-js';
import { H3Connection, h3Fetch } from './h3-client.ts';
import type { LoadResult, LoadTask } from './load-types.ts';
import type { Endpoint } from './targets.ts';

/** Sends one request and resolves with the response body length; rejects on a transport error or non-2xx. */
type Send = () => Promise<number>;

interface Sender {
  /** The send function for lane `i` (a lane is one closed-loop virtual user or one fixed-rate slot). */
  lane(i: number): Send;
  close(): Promise<void>;
}

const MAX_ERROR_SAMPLES = 5;
const HIST_MAX_US = 120_000_000;

function undiciOptions(ep: Endpoint, reuse: LoadTask['reuse'], streams: number): Client.Options {
  const tls = ep.protocol !== 'h1';
  return {
    allowH2: ep.protocol === 'h2',
    pipelining: 1,
    h2Options: { maxConcurrentStreams: Math.max(1, streams) },
    keepAliveTimeout: 120_000,
    headersTimeout: 30_000,
    bodyTimeout: 30_000,
    // The self-signed bench certificate is not verified. New-connection runs keep no TLS session cache, so each
    // request pays a full handshake (what "handshakes per second" means here).
    connect: tls ? { rejectUnauthorized: false, servername: 'localhost', ...(reuse === 'newconn' ? { maxCachedSessions: 0 } : {}) } : undefined,
  };
}

function origin(ep: Endpoint): string {
  return `${ep.protocol === 'h1' ? 'http' : 'https'}://127.0.0.1:${ep.port}`;
}

async function undiciRequest(client: Client, task: LoadTask, upload: Buffer | undefined): Promise<number> {
  const res = await client.request({
    path: task.path,
    method: task.method,
    body: upload,
    headers: upload ? { 'content-type': 'application/octet-stream' } : undefined,
  });
  let n = 0;
  for await (const chunk of res.body) n += (chunk as Buffer).length;
  if (res.statusCode < 200 || res.statusCode > 299) throw new Error(`HTTP ${res.statusCode}`);
  return n;
}

function undiciSender(task: LoadTask): Sender {
  const upload = task.uploadBytes > 0 ? Buffer.alloc(task.uploadBytes, 120) : undefined;
  const eps = task.endpoints;
  const pick = (i: number): Endpoint => eps[(task.offset + i) % eps.length];
  if (task.reuse === 'newconn') {
    return {
      lane: (i) => {
        let n = i;
        return async () => {
          // Alternate endpoints per request, so the baseline spreads over both backends.
          const ep = pick(n++);
          const c = new Client(origin(ep), undiciOptions(ep, 'newconn', 1));
          try {
            return await undiciRequest(c, task, upload);
          } finally {
            await c.close();
          }
        };
      },
      close: async () => {},
    };
  }
  // HTTP/1.1: one connection per lane. HTTP/2: `streams` lanes share a connection.
  const perConn = eps.some((e) => e.protocol === 'h2') ? Math.max(1, task.streams) : 1;
  const clients: Client[] = [];
  const count = Math.max(1, Math.ceil(task.concurrency / perConn));
  for (let i = 0; i < count; i++) {
    const ep = pick(i);
    clients.push(new Client(origin(ep), undiciOptions(ep, 'keepalive', perConn)));
  }
  return {
    lane: (i) => {
      const c = clients[i % clients.length];
      return () => undiciRequest(c, task, upload);
    },
    close: async () => {
      await Promise.all(clients.map((c) => c.close().catch(() => {})));
    },
  };
}

function h3Sender(task: LoadTask): Sender {
  const upload = task.uploadBytes > 0 ? new Uint8Array(Buffer.alloc(task.uploadBytes, 120)) : undefined;
  const eps = task.endpoints;
  const pick = (i: number): Endpoint => eps[(task.offset + i) % eps.length];
  // :authority defaults to 127.0.0.1:port, the name the peers' site blocks (Caddy) match on.
  const req = { path: task.path, method: task.method, body: upload, timeoutMs: 30_000 };
  const check = (r: { status: number; bytes: number }): number => {
    if (r.status < 200 || r.status > 299) throw new Error(`HTTP ${r.status}`);
    return r.bytes;
  };
  if (task.reuse === 'newconn') {
    return {
      lane: (i) => {
        let n = i;
        return async () => check(await h3Fetch({ host: '127.0.0.1', port: pick(n++).port, ...req }));
      },
      close: async () => {},
    };
  }
  const count = Math.max(1, Math.ceil(task.concurrency / Math.max(1, task.streams)));
  const conns: Array<Promise<H3Connection> | undefined> = new Array(count).fill(undefined);
  const get = async (k: number): Promise<H3Connection> => {
    const cur = conns[k];
    if (cur) {
      const c = await cur.catch(() => undefined);
      if (c?.isOpen) return c;
    }
    const next = H3Connection.connect({ host: '127.0.0.1', port: pick(k).port });
    conns[k] = next;
    return next;
  };
  return {
    lane: (i) => async () => check(await (await get(i % count)).request(req)),
    close: async () => {
      for (const p of conns) (await p?.catch(() => undefined))?.close();
    },
  };
}

function newHistogram(): hdr.Histogram {
  return hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: HIST_MAX_US, numberOfSignificantValueDigits: 3 });
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export default async function runLoad(task: LoadTask): Promise<LoadResult> {
  const sender = task.endpoints[0].protocol === 'h3' ? h3Sender(task) : undiciSender(task);
  const counters = new Int32Array(task.counters);
  const hist = newHistogram();
  let requests = 0;
  let errors = 0;
  let bytes = 0;
  let lateSends = 0;
  const errorSamples: string[] = [];
  const t0 = performance.now();
  const warmEnd = t0 + task.warmupMs;
  const end = warmEnd + task.durationMs;
  let cpu0 = process.threadCpuUsage();
  let measureStart = warmEnd;
  const cpuTimer = setTimeout(() => {
    cpu0 = process.threadCpuUsage();
    measureStart = performance.now();
  }, task.warmupMs);

  const record = (start: number, done: number, n: number | Error, measured: boolean): void => {
    if (n instanceof Error) {
      Atomics.add(counters, 1, 1);
      if (!measured) return;
      errors++;
      if (errorSamples.length < MAX_ERROR_SAMPLES) errorSamples.push(n.message);
      return;
    }
    Atomics.add(counters, 0, 1);
    if (!measured) return;
    if (n !== task.expectBytes) {
      errors++;
      if (errorSamples.length < MAX_ERROR_SAMPLES) errorSamples.push(`response of ${n} bytes, expected ${task.expectBytes}`);
      return;
    }
    requests++;
    bytes += n;
    hist.recordValue(Math.min(HIST_MAX_US, Math.max(1, Math.round((done - start) * 1000))));
  };

  const attempt = async (send: Send): Promise<number | Error> => {
    try {
      return await send();
    } catch (err) {
      return err instanceof Error ? err : new Error(String(err));
    }
  };

  if (task.rate <= 0) {
    // Closed loop: a result counts when its request started after warm-up and ended inside the window.
    const lane = async (i: number): Promise<void> => {
      const send = sender.lane(i);
      while (performance.now() < end) {
        const start = performance.now();
        const r = await attempt(send);
        const done = performance.now();
        record(start, done, r, start >= warmEnd && done <= end);
        // An instant failure (refused connection) must not spin the CPU the servers need.
        if (r instanceof Error) await sleep(5);
      }
    };
    await Promise.all(Array.from({ length: task.concurrency }, (_, i) => lane(i)));
  } else {
    // Fixed rate, at most `concurrency` in flight; request i is due at t0 + i * interval.
    const interval = 1000 / task.rate;
    await new Promise<void>((resolveAll) => {
      let i = 0;
      let inflight = 0;
      let timer: NodeJS.Timeout | undefined;
      let finished = false;
      // True while due requests wait for one of the `concurrency` slots (the server is behind the rate).
      let backlog = false;
      const lanes = Array.from({ length: task.concurrency }, (_, k) => sender.lane(k));
      const free: number[] = lanes.map((_, k) => k);
      const maybeDone = (): void => {
        if (!finished && inflight === 0 && t0 + i * interval >= end) {
          finished = true;
          resolveAll();
        }
      };
      const pump = (): void => {
        timer = undefined;
        for (;;) {
          const due = t0 + i * interval;
          if (due >= end) return maybeDone();
          const now = performance.now();
          if (due > now) {
            backlog = false;
            timer ??= setTimeout(pump, Math.max(0, due - now));
            return;
          }
          if (free.length === 0) {
            // Resumed by the next completion; the due time stands, so the wait shows in the latency.
            backlog = true;
            return;
          }
          if (backlog && due >= warmEnd) lateSends++;
          const k = free.pop()!;
          inflight++;
          i++;
          void attempt(lanes[k]).then((r) => {
            record(due, performance.now(), r, due >= warmEnd);
            inflight--;
            free.push(k);
            if (timer === undefined) pump();
            maybeDone();
          });
        }
      };
      pump();
    });
  }
  clearTimeout(cpuTimer);
  const cpu = process.threadCpuUsage(cpu0);
  const elapsedMs = performance.now() - measureStart;
  await sender.close();
  return {
    histogram: hdr.encodeIntoCompressedBase64(hist),
    requests,
    errors,
    bytes,
    lateSends,
    errorSamples,
    cpuUserUs: cpu.user,
    cpuSystemUs: cpu.system,
    elapsedMs,
  };
}

/** What holdH3 is given: open `count` HTTP/3 connections to port, one request each, and hold them. */
export interface HoldH3Task {
  port: number;
  path: string;
  count: number;
  /** Int32Array: [0] connections opened (all threads), [1] failures, [2] set to 1 to close them and return. */
  counters: SharedArrayBuffer;
  idleTimeoutMs: number;
}

export interface HoldH3Result {
  opened: number;
  failed: number;
  errorSamples: string[];
}

/**
 * The idle-connection memory bench's HTTP/3 part (piscina task, `name: 'holdH3'`): one quiche connection and
 * one UDP socket per connection, 32 handshakes at a time, each makes one request; then they stay idle until
 * counters[2] turns 1.
 */
export async function holdH3(task: HoldH3Task): Promise<HoldH3Result> {
  const view = new Int32Array(task.counters);
  const conns: H3Connection[] = [];
  const errorSamples: string[] = [];
  let failed = 0;
  let opened = 0;
  let next = 0;
  const lane = async (): Promise<void> => {
    while (next < task.count) {
      next++;
      try {
        const c = await H3Connection.connect({ host: '127.0.0.1', port: task.port, connectTimeoutMs: 30_000, idleTimeoutMs: task.idleTimeoutMs });
        conns.push(c);
        const r = await c.request({ path: task.path, timeoutMs: 30_000 });
        if (r.status !== 200) throw new Error(`HTTP ${r.status}`);
        opened++;
        Atomics.add(view, 0, 1);
      } catch (err) {
        failed++;
        Atomics.add(view, 1, 1);
        if (errorSamples.length < MAX_ERROR_SAMPLES) errorSamples.push((err as Error).message);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(32, task.count) }, lane));
  while (Atomics.load(view, 2) === 0) await sleep(100);
  for (const c of conns) c.close();
  return { opened, failed, errorSamples };
}
