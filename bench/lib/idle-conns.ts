// `npm run bench -- --idle-conns`: what idle keep-alive connections cost quiclb in memory. quiclb --workers 1
// (HTTP/3 on) in front of the nginx backends; RSS is read from /proc after start, after one request of each
// protocol (so lazily loaded code and the backend pools are counted in the starting point, not per
// connection), then after opening, in turn, N idle HTTP/1.1 connections (raw sockets in this process), N HTTP/2
// connections (node:http2 client sessions) and N HTTP/3 connections (our HTTP/3 client in piscina threads, one
// quiche connection and UDP socket each). Every connection makes one request and then stays open and idle.
// The goal: under 300 MB added for 10,000 + 2,000 + 2,000.
import net from 'node:net';
import http2 from 'node:http2';
import { Piscina } from 'piscina';
import type { BenchOptions } from './args.ts';
import { startBackends } from './backends.ts';
import { h3ClientThreads } from './load.ts';
import type { HoldH3Result, HoldH3Task } from './load-worker.ts';
import { raiseNofile, rssBytes } from './procs.ts';
import { startQuiclbTarget, type PeerEnv } from './targets.ts';
import { h3Fetch } from './h3-client.ts';

export interface IdleStage {
  stage: string;
  h1: number;
  h2: number;
  h3: number;
  rssBytes: number;
}

export interface IdleReport {
  date: string;
  node: string;
  cores: number;
  asked: { h1: number; h2: number; h3: number };
  stages: IdleStage[];
  /** RSS added by the idle connections: the last stage (all idle for SETTLE_S s) minus the warm one. */
  addedBytes: number;
  /** The same right after the last connection opened (garbage of the set-up included). */
  addedAtOpenBytes: number;
  failures: string[];
  notes: string[];
  wallS: number;
}

const IDLE_TIMEOUT = '600s';
/** Seconds every connection stays idle before the last reading. */
const SETTLE_S = 15;
const PATH = '/small';

/** Runs `open` n times, `concurrency` at a time; returns what opened and the failures. */
async function openMany<T>(n: number, concurrency: number, open: () => Promise<T>, progress: (done: number, failed: number) => void): Promise<{ ok: T[]; failures: string[] }> {
  const ok: T[] = [];
  const failures: string[] = [];
  let started = 0;
  const lane = async (): Promise<void> => {
    while (started < n) {
      started++;
      try {
        ok.push(await open());
      } catch (err) {
        failures.push((err as Error).message);
      }
      progress(ok.length, failures.length);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, n) }, lane));
  return { ok, failures };
}

/** A plain HTTP/1.1 keep-alive connection that made one GET and now idles. */
function openH1(port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1');
    let buf = '';
    const fail = (err: Error): void => {
      clearTimeout(timer);
      s.destroy();
      reject(err);
    };
    const timer = setTimeout(() => fail(new Error('HTTP/1.1: no response in 30 s')), 30_000);
    s.setEncoding('latin1');
    s.once('error', fail);
    s.once('connect', () => s.write(`GET ${PATH} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n\r\n`));
    const onData = (chunk: string): void => {
      buf += chunk;
      const end = buf.indexOf('\r\n\r\n');
      if (end < 0) return;
      const head = buf.slice(0, end);
      if (!head.startsWith('HTTP/1.1 200')) return fail(new Error(`HTTP/1.1: ${head.split('\r\n')[0]}`));
      const len = Number(/\r\ncontent-length:\s*(\d+)/i.exec(head)?.[1]);
      if (buf.length - end - 4 < len) return;
      clearTimeout(timer);
      s.off('data', onData);
      s.off('error', fail);
      // Idle from now on; a close by the server just ends it.
      s.on('error', () => {});
      s.on('data', () => {});
      resolve(s);
    };
    s.on('data', onData);
  });
}

/** An HTTP/2 connection (one session) that made one GET and now idles. */
function openH2(port: number): Promise<http2.ClientHttp2Session> {
  return new Promise((resolve, reject) => {
    const session = http2.connect(`https://127.0.0.1:${port}`, { rejectUnauthorized: false, servername: 'localhost' });
    const fail = (err: Error): void => {
      clearTimeout(timer);
      session.destroy();
      reject(err);
    };
    const timer = setTimeout(() => fail(new Error('HTTP/2: no response in 30 s')), 30_000);
    session.once('error', fail);
    const req = session.request({ ':path': PATH });
    let status = 0;
    req.on('response', (h) => (status = Number(h[':status'])));
    req.on('error', fail);
    req.resume();
    req.on('end', () => {
      if (status !== 200) return fail(new Error(`HTTP/2: status ${status}`));
      clearTimeout(timer);
      session.off('error', fail);
      session.on('error', () => {});
      resolve(session);
    });
  });
}

/** A progress line: rewritten in place on a terminal unless `keep`; one line each on a pipe. */
function line(msg: string, keep = false): void {
  process.stderr.write(process.stderr.isTTY ? `\r\x1b[K${msg}${keep ? '\n' : ''}` : `${msg}\n`);
}

export async function runIdleConns(opts: BenchOptions, dir: string, certFile: string, keyFile: string, cores: number): Promise<IdleReport> {
  const started = performance.now();
  const asked = opts.idleConns!;
  const notes: string[] = [];
  // Each connection is a descriptor here and one in quiclb (which inherits this limit), HTTP/3 a UDP socket.
  const want = asked.h1 + asked.h2 + asked.h3 + 4096;
  const lim = raiseNofile(Math.max(want, 65_536));
  notes.push(lim.note);
  if (lim.soft < want) notes.push(`RLIMIT_NOFILE ${lim.soft} is below the ${want} descriptors needed: expect failures (run as root, or raise the hard limit)`);

  const backendSet = await startBackends(dir, certFile, keyFile, Math.max(1, cores));
  const env: PeerEnv = { dir, backends: backendSet.backends, certFile, keyFile, workers: 1 };
  const quiclb = await startQuiclbTarget(env, { h3: true, idleTimeout: IDLE_TIMEOUT });
  const h1Port = quiclb.endpoints('h1')![0].port;
  const tlsPort = quiclb.endpoints('h2')![0].port;
  const stages: IdleStage[] = [];
  const open = { h1: 0, h2: 0, h3: 0 };
  const rss = (stage: string): void => {
    stages.push({ stage, ...open, rssBytes: rssBytes(quiclb.pids()) });
    line(`[idle] ${stage}: quiclb RSS ${(stages.at(-1)!.rssBytes / 1048576).toFixed(1)} MiB`, true);
  };
  const settle = (): Promise<void> => new Promise((r) => setTimeout(r, 1000));
  const failures: string[] = [];
  const sockets: net.Socket[] = [];
  const sessions: http2.ClientHttp2Session[] = [];
  const counters = new SharedArrayBuffer(12);
  const view = new Int32Array(counters);
  const threads = Math.max(1, h3ClientThreads(opts.threads));
  const pool = new Piscina({ filename: new URL('./load-worker.ts', import.meta.url).href, minThreads: threads, maxThreads: threads, idleTimeout: 3_600_000, atomics: 'disabled' });
  let h3Tasks: Promise<HoldH3Result>[] = [];
  try {
    rss('started');
    // One of each, closed again: loads the code paths and opens the backend pools.
    const s1 = await openH1(h1Port);
    s1.destroy();
    const s2 = await openH2(tlsPort);
    s2.close();
    await h3Fetch({ host: '127.0.0.1', port: tlsPort, path: PATH, timeoutMs: 10_000 });
    await settle();
    rss('warm (one request of each protocol, closed)');

    const h1 = await openMany(asked.h1, 256, () => openH1(h1Port), (n, f) => {
      open.h1 = n;
      if ((n + f) % 500 === 0) line(`[idle] HTTP/1.1 ${n}/${asked.h1} open, ${f} failed`);
    });
    sockets.push(...h1.ok);
    failures.push(...h1.failures.slice(0, 5).map((f) => `HTTP/1.1: ${f} (${h1.failures.length} failures)`));
    await settle();
    rss(`+${open.h1} idle HTTP/1.1`);

    const h2 = await openMany(asked.h2, 32, () => openH2(tlsPort), (n, f) => {
      open.h2 = n;
      if ((n + f) % 200 === 0) line(`[idle] HTTP/2 ${n}/${asked.h2} open, ${f} failed`);
    });
    sessions.push(...h2.ok);
    failures.push(...h2.failures.slice(0, 5).map((f) => `HTTP/2: ${f} (${h2.failures.length} failures)`));
    await settle();
    rss(`+${open.h2} idle HTTP/2`);

    if (asked.h3 > 0) {
      // Spread over the client threads; they report through the shared counters and hold until released.
      const per = Math.ceil(asked.h3 / threads);
      h3Tasks = Array.from({ length: threads }, (_, i) => {
        const count = Math.max(0, Math.min(per, asked.h3 - i * per));
        const task: HoldH3Task = { port: tlsPort, path: PATH, count, counters, idleTimeoutMs: 600_000 };
        return pool.run(task, { name: 'holdH3' }) as Promise<HoldH3Result>;
      });
      const ticker = setInterval(() => line(`[idle] HTTP/3 ${Atomics.load(view, 0)}/${asked.h3} open, ${Atomics.load(view, 1)} failed`), 1000);
      while (Atomics.load(view, 0) + Atomics.load(view, 1) < asked.h3) await new Promise((r) => setTimeout(r, 200));
      clearInterval(ticker);
      open.h3 = Atomics.load(view, 0);
      await settle();
    }
    rss(`+${open.h3} idle HTTP/3`);
    // RSS holds garbage the connection set-up left, until V8 collects it; its memory reducer runs once
    // allocation has been quiet for a while. What stays after that is what idle connections really hold.
    line(`[idle] all open; waiting ${SETTLE_S} s with every connection idle`);
    await new Promise((r) => setTimeout(r, SETTLE_S * 1000));
    rss(`all idle for ${SETTLE_S} s more`);
  } finally {
    Atomics.store(view, 2, 1);
    const h3Results = await Promise.all(h3Tasks).catch(() => [] as HoldH3Result[]);
    for (const r of h3Results) failures.push(...r.errorSamples.map((e) => `HTTP/3: ${e} (${r.failed} failures in one thread)`));
    for (const s of sockets) s.destroy();
    for (const s of sessions) s.destroy();
    await pool.destroy();
    await quiclb.stop();
    await backendSet.stop();
  }
  const warm = stages[1]?.rssBytes ?? stages[0].rssBytes;
  return {
    date: new Date().toISOString(),
    node: process.versions.node,
    cores,
    asked,
    stages,
    addedBytes: stages.at(-1)!.rssBytes - warm,
    addedAtOpenBytes: (stages.at(-2) ?? stages.at(-1)!).rssBytes - warm,
    failures,
    notes,
    wallS: Math.round((performance.now() - started) / 100) / 10,
  };
}

export function idleMarkdown(r: IdleReport): string {
  const mib = (b: number): string => (b / 1048576).toFixed(1);
  const lines: string[] = [];
  lines.push(`# quiclb idle connections, ${r.date}`);
  lines.push('');
  lines.push(
    `quiclb --workers 1 (HTTP/3 on, client idle timeouts ${IDLE_TIMEOUT}), ${r.cores} cores, Node ${r.node}; asked for ` +
      `${r.asked.h1} HTTP/1.1, ${r.asked.h2} HTTP/2 and ${r.asked.h3} HTTP/3 connections, each made one GET ${PATH} and then idled; wall time ${r.wallS}s. ` +
      'RSS = VmRSS of the quiclb process (primary and shard threads), read 1 s after each stage.',
  );
  lines.push('');
  lines.push('| stage | HTTP/1.1 open | HTTP/2 open | HTTP/3 open | quiclb RSS MiB | added since warm MiB | added per connection of this stage KiB |');
  lines.push('|---|--:|--:|--:|--:|--:|--:|');
  let prev: IdleStage | undefined;
  const warm = r.stages[1] ?? r.stages[0];
  for (const s of r.stages) {
    const conns = prev ? s.h1 + s.h2 + s.h3 - (prev.h1 + prev.h2 + prev.h3) : 0;
    // The settle stage opens nothing: no per-connection figure.
    const per = prev && conns > 0 ? ((s.rssBytes - prev.rssBytes) / conns / 1024).toFixed(1) : '';
    lines.push(`| ${s.stage} | ${s.h1} | ${s.h2} | ${s.h3} | ${mib(s.rssBytes)} | ${s === r.stages[0] ? '' : mib(s.rssBytes - warm.rssBytes)} | ${per} |`);
    prev = s;
  }
  lines.push('');
  lines.push(
    `**Added by the idle connections: ${mib(r.addedBytes)} MiB = ${(r.addedBytes / 1e6).toFixed(1)} MB** after all stayed idle ` +
      `${SETTLE_S} s (${mib(r.addedAtOpenBytes)} MiB right after the last one opened, garbage of the set-up included; ` +
      `goal of the per-request-cost issue: < 300 MB for 10,000 + 2,000 + 2,000; reported, not asserted).`,
  );
  lines.push('');
  if (r.failures.length > 0) {
    lines.push('Failures (first samples):');
    lines.push('');
    for (const f of r.failures) lines.push(`- ${f}`);
    lines.push('');
  }
  for (const n of r.notes) lines.push(`- ${n}`);
  lines.push('');
  return lines.join('\n');
}
