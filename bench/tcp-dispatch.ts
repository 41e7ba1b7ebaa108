// Measures how TCP connections reach the shards: (a) the primary accepts with pauseOnConnect and transfers
// each socket to a worker (quiclb's design; Node >= 24.21), against (b) every worker listening on the
// same port with reusePort (the kernel spreads connections). Both serve the same tiny HTTP/1.1 answer.
// Load: h2load (keep-alive) and a connection per request (wrk with "Connection: close", which reconnects
// after every response; a JS loop where wrk is missing), 127.0.0.1 only.
// The primary's accept rate: in (a), connections the primary accepted and handed over per second, and per
// CPU-second of the primary thread (process.threadCpuUsage): what one core of accepting sustains, the bound
// on new connections per second however many shards there are.
//   node bench/tcp-dispatch.ts [--workers 2] [--seconds 5] [--connections 32]
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import type { TransferListItem } from 'node:worker_threads';
import net from 'node:net';
import http from 'node:http';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { parseArgs } from 'node:util';

type Mode = 'transfer' | 'reuseport';
const BODY = 'ok\n';

function serve(server: http.Server): void {
  server.keepAliveTimeout = 5000;
  server.on('request', (_req, res) => res.writeHead(200, { 'content-length': BODY.length }).end(BODY));
}

if (!isMainThread) {
  const { mode, port } = workerData as { mode: Mode; port: number };
  const server = http.createServer();
  serve(server);
  if (mode === 'reuseport') {
    server.listen({ port, host: '127.0.0.1', reusePort: true }, () => parentPort!.postMessage('ready'));
  } else {
    parentPort!.on('message', (msg: { socket: net.Socket }) => {
      server.emit('connection', msg.socket);
      msg.socket.resume();
    });
    parentPort!.postMessage('ready');
  }
} else {
  const { values } = parseArgs({
    options: { workers: { type: 'string', default: '2' }, seconds: { type: 'string', default: '5' }, connections: { type: 'string', default: '32' } },
  });
  const workers = Number(values.workers);
  const seconds = Number(values.seconds);
  const connections = Number(values.connections);
  const wrk = ['/usr/bin/wrk', '/usr/local/bin/wrk'].find((p) => existsSync(p));

  interface Started {
    port: number;
    /** Connections the primary accepted and transferred (transfer mode). */
    accepted(): number;
    stop(): Promise<void>;
  }

  async function start(mode: Mode): Promise<Started> {
    const probe = net.createServer();
    await new Promise<void>((r) => probe.listen(0, '127.0.0.1', () => r()));
    const port = (probe.address() as net.AddressInfo).port;
    await new Promise<void>((r) => probe.close(() => r()));
    const pool = Array.from({ length: workers }, () => new Worker(new URL(import.meta.url), { workerData: { mode, port } }));
    await Promise.all(pool.map((w) => new Promise((r) => w.once('message', r))));
    let primary: net.Server | undefined;
    let accepted = 0;
    if (mode === 'transfer') {
      let next = 0;
      // As src/primary/tcp-listeners.ts: paused, no byte read here, handed to a worker.
      primary = net.createServer({ pauseOnConnect: true, noDelay: true }, (socket) => {
        accepted++;
        pool[next++ % pool.length].postMessage({ socket }, [socket as unknown as TransferListItem]);
      });
      await new Promise<void>((r) => primary!.listen({ port, host: '127.0.0.1', backlog: 4096 }, () => r()));
    }
    return {
      port,
      accepted: () => accepted,
      async stop() {
        primary?.close();
        await Promise.all(pool.map((w) => w.terminate()));
      },
    };
  }

  function h2load(port: number): Promise<number> {
    return new Promise((resolve, reject) => {
      execFile('h2load', ['--h1', '-c', '32', '-D', String(seconds), `http://127.0.0.1:${port}/`], (err, stdout) => {
        if (err) return reject(err);
        resolve(Number(/finished in [^,]+, ([\d.]+) req\/s/.exec(stdout)?.[1] ?? 0));
      });
    });
  }

  /** New TCP connection per request with wrk (Connection: close: it reconnects after each response); conn/s. */
  function wrkConnectionPerRequest(port: number): Promise<number> {
    return new Promise((resolve, reject) => {
      const args = ['-t', '1', '-c', String(connections), '-d', `${Math.max(1, Math.round(seconds))}s`, '-H', 'Connection: close', `http://127.0.0.1:${port}/`];
      execFile(wrk!, args, (err, stdout) => {
        if (err) return reject(err);
        resolve(Number(/Requests\/sec:\s+([\d.]+)/.exec(stdout)?.[1] ?? 0));
      });
    });
  }

  /** New TCP connection per request, `connections` at a time, for `seconds` (where wrk is missing). */
  async function connectionPerRequest(port: number): Promise<number> {
    const deadline = Date.now() + seconds * 1000;
    let done = 0;
    const one = () =>
      new Promise<void>((resolve) => {
        const s = net.connect(port, '127.0.0.1', () => s.write('GET / HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n'));
        s.on('data', () => undefined);
        s.on('error', () => resolve());
        s.on('close', () => {
          done++;
          resolve();
        });
      });
    await Promise.all(Array.from({ length: connections }, async () => {
      while (Date.now() < deadline) await one();
    }));
    return done / seconds;
  }

  const KEEP = 'keep-alive req/s (h2load -c 32)';
  const NEW = `new connection per request, conn/s (${wrk ? 'wrk, Connection: close' : 'JS loop'}, ${connections} at a time)`;
  const results: Record<string, Record<Mode, number>> = { [KEEP]: { transfer: 0, reuseport: 0 }, [NEW]: { transfer: 0, reuseport: 0 } };
  let accept = { perS: 0, perCpuS: 0, primaryCores: 0 };
  for (const mode of ['transfer', 'reuseport'] as Mode[]) {
    process.stderr.write(`[tcp-dispatch] ${mode}: keep-alive ${seconds}s ...\n`);
    const s = await start(mode);
    results[KEEP][mode] = await h2load(s.port);
    process.stderr.write(`[tcp-dispatch] ${mode}: connection per request ${seconds}s ...\n`);
    const a0 = s.accepted();
    const cpu0 = process.threadCpuUsage();
    const t0 = performance.now();
    results[NEW][mode] = wrk ? await wrkConnectionPerRequest(s.port) : await connectionPerRequest(s.port);
    if (mode === 'transfer') {
      const cpu = process.threadCpuUsage(cpu0);
      const cpuS = (cpu.user + cpu.system) / 1e6;
      const wallS = (performance.now() - t0) / 1000;
      const n = s.accepted() - a0;
      // Without wrk the connections come from this very thread: its CPU is not the primary's alone.
      accept = { perS: n / wallS, perCpuS: wrk ? n / cpuS : NaN, primaryCores: cpuS / wallS };
    }
    await s.stop();
  }
  console.log(`| ${workers} workers, ${seconds}s each | transfer (primary accepts) | reusePort | transfer / reusePort |`);
  console.log('|---|---|---|---|');
  for (const [name, r] of Object.entries(results)) {
    console.log(`| ${name} | ${Math.round(r.transfer)} | ${Math.round(r.reuseport)} | ${(r.transfer / r.reuseport).toFixed(2)} |`);
  }
  console.log('');
  console.log(
    `primary accept rate (transfer mode): ${Math.round(accept.perS)} connections/s accepted and handed over, primary thread ${accept.primaryCores.toFixed(2)} cores: ` +
      `${Number.isFinite(accept.perCpuS) ? Math.round(accept.perCpuS) : '- (needs wrk)'} accepts per primary CPU-second`,
  );
}
