// Measures how TCP connections reach the shards: (a) the primary accepts with pauseOnConnect and transfers
// each socket to a worker (quiclb's design; Node >= 24.21), against (b) every worker listening on the
// same port with reusePort (the kernel spreads connections). Both serve the same tiny HTTP/1.1 answer.
// Load: h2load (keep-alive) and a connection-per-request loop (handshake-bound), 127.0.0.1 only.
//   node bench/tcp-dispatch.ts [--workers 2] [--seconds 5]
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import type { TransferListItem } from 'node:worker_threads';
import net from 'node:net';
import http from 'node:http';
import { execFile } from 'node:child_process';
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
  const { values } = parseArgs({ options: { workers: { type: 'string', default: '2' }, seconds: { type: 'string', default: '5' } } });
  const workers = Number(values.workers);
  const seconds = Number(values.seconds);

  async function start(mode: Mode): Promise<{ port: number; stop(): Promise<void> }> {
    const probe = net.createServer();
    await new Promise<void>((r) => probe.listen(0, '127.0.0.1', () => r()));
    const port = (probe.address() as net.AddressInfo).port;
    await new Promise<void>((r) => probe.close(() => r()));
    const pool = Array.from({ length: workers }, () => new Worker(new URL(import.meta.url), { workerData: { mode, port } }));
    await Promise.all(pool.map((w) => new Promise((r) => w.once('message', r))));
    let primary: net.Server | undefined;
    if (mode === 'transfer') {
      let next = 0;
      primary = net.createServer({ pauseOnConnect: true }, (socket) => {
        pool[next++ % pool.length].postMessage({ socket }, [socket as unknown as TransferListItem]);
      });
      await new Promise<void>((r) => primary!.listen({ port, host: '127.0.0.1', backlog: 4096 }, () => r()));
    }
    return {
      port,
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

  /** New TCP connection per request, 32 at a time, for `seconds`. */
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
    await Promise.all(Array.from({ length: 32 }, async () => {
      while (Date.now() < deadline) await one();
    }));
    return done / seconds;
  }

  const results: Record<string, Record<Mode, number>> = { 'keep-alive req/s (h2load -c 32)': { transfer: 0, reuseport: 0 }, 'new connection per request, conn/s': { transfer: 0, reuseport: 0 } };
  for (const mode of ['transfer', 'reuseport'] as Mode[]) {
    process.stderr.write(`[tcp-dispatch] ${mode}: keep-alive ${seconds}s ...\n`);
    const s = await start(mode);
    results['keep-alive req/s (h2load -c 32)'][mode] = await h2load(s.port);
    process.stderr.write(`[tcp-dispatch] ${mode}: connection per request ${seconds}s ...\n`);
    results['new connection per request, conn/s'][mode] = await connectionPerRequest(s.port);
    await s.stop();
  }
  console.log(`| ${workers} workers, ${seconds}s each | transfer (primary accepts) | reusePort | transfer / reusePort |`);
  console.log('|---|---|---|---|');
  for (const [name, r] of Object.entries(results)) {
    console.log(`| ${name} | ${Math.round(r.transfer)} | ${Math.round(r.reuseport)} | ${(r.transfer / r.reuseport).toFixed(2)} |`);
  }
}
