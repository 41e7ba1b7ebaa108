// QUIC datagrams through the primary, measured on one core.
// 1. How datagrams should cross from the primary to a shard thread (issue #3): one postMessage per datagram
//    (the Buffer is cloned) against batches in one transferred ArrayBuffer (src/wire/datagram-batch.ts).
// 2. The primary's routing rate: the real UdpRouter.route() (src/primary/udp-router.ts) fed realistic
//    short-header packets (our 16-octet CIDs naming 2 shards, client addresses from a pool of 1,000), batching
//    and posting to a real worker thread that reads every datagram and acknowledges, as a shard does; then the
//    same behind a real UDP socket, with a sender thread blasting datagrams at it (recvmsg and the 'message'
//    event included). Each reports datagrams/s and datagrams per CPU-second of the primary thread
//    (process.threadCpuUsage): the rate one core sustains, whatever else the machine runs.
// Run: node bench/quic-transfer.ts [datagrams] [size] [--seconds S] [--senders N] [--route-only]
// (--senders: sender threads for the socket test, default 2: one Node thread sends about 200-300k datagrams/s.)
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import dgram from 'node:dgram';
import { randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';
import pino from 'pino';
import { DatagramBatchWriter, readBatch } from '../src/wire/datagram-batch.ts';
import { encodeCid } from '../src/wire/cid.ts';
import { UdpRouter, type ShardPort } from '../src/primary/udp-router.ts';
import { SharedState, G_DROP_QUEUE_FULL, G_DROP_SHORT_UNKNOWN_CID, G_DROP_BAD_HEADER } from '../src/shared/state.ts';
import { validateConfig } from '../src/config/load.ts';
import { freePort } from './lib/procs.ts';

const SHARDS = 2;
/** Datagrams per socket read burst: libuv reads up to 32 datagrams per poll iteration. */
const BURST = 32;

/** A short-header packet (RFC 9000 §17.3.1): header form 0, fixed bit 1, then our 16-octet DCID. */
function shortHeaderPacket(shard: number, size: number): Buffer {
  const b = randomBytes(Math.max(size, 1 + 20 + 1 + 16));
  b[0] = 0x40 | (b[0] & 0x3f);
  encodeCid(shard).copy(b, 1);
  return b.subarray(0, Math.max(size, 38));
}

/** The mix a shard's primary sees on a download: 3 of 4 client datagrams are ACK-only (~60 octets). */
function sizeMix(kind: 'fixed' | 'mixed', size: number, i: number): number {
  return kind === 'fixed' ? size : i % 4 === 3 ? 1350 : 60;
}

if (!isMainThread && (workerData as { role?: string } | undefined)?.role === 'sender') {
  // Blasts datagrams at the router's port until told to stop; reports how many it sent.
  const { port, packets } = workerData as { port: number; packets: Buffer[] };
  const sock = dgram.createSocket('udp4');
  let sent = 0;
  let stop = false;
  parentPort!.on('message', () => (stop = true));
  sock.connect(port, '127.0.0.1', () => {
    parentPort!.postMessage({ ready: true });
    const pump = (): void => {
      if (stop) {
        parentPort!.postMessage({ sent });
        sock.close();
        return;
      }
      // Keep libuv's send queue short: the rest waits a turn instead of queueing without bound.
      for (let k = 0; k < 256 && sock.getSendQueueCount() < 64; k++, sent++) sock.send(packets[sent % packets.length]);
      setImmediate(pump);
    };
    pump();
  });
} else if (!isMainThread && (workerData as { role?: string } | undefined)?.role === 'sink') {
  // Where the primary's outgoing datagrams go (the clients): counts what arrives, reports on request.
  const sock = dgram.createSocket('udp4');
  let got = 0;
  sock.on('message', () => got++);
  parentPort!.on('message', () => parentPort!.postMessage({ got }));
  sock.bind(0, '127.0.0.1', () => {
    try {
      sock.setRecvBufferSize(8 * 1024 * 1024);
    } catch {
      // the kernel's default then
    }
    parentPort!.postMessage({ port: sock.address().port });
  });
} else if (!isMainThread) {
  // The shard side: touch each datagram (as quiche's recv would read it), acknowledge routed batches, report
  // when all of a postMessage run arrived.
  let seen = 0;
  let sum = 0;
  let target = 0;
  parentPort!.on('message', (m: any) => {
    if (m.type === 'quic:in') {
      readBatch(m.buf, m.len, (data, _host, port) => {
        sum += data[0] + data[data.length - 1] + port;
      });
      parentPort!.postMessage({ type: 'ack', shard: (workerData as { index?: number } | undefined)?.index ?? 0, n: m.n });
      return;
    }
    if (m.type === 'start') {
      seen = 0;
      sum = 0;
      target = m.n;
      return;
    }
    if (m.type === 'one') {
      sum += m.data[0] + m.data[m.data.length - 1] + m.port;
      seen++;
    } else if (m.type === 'batch') {
      readBatch(m.buf, m.len, (data, _host, port) => {
        sum += data[0] + data[data.length - 1] + port;
        seen++;
      });
    }
    if (seen === target) parentPort!.postMessage({ type: 'done', sum });
  });
} else {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: { seconds: { type: 'string', default: '3' }, senders: { type: 'string', default: '2' }, 'route-only': { type: 'boolean', default: false } },
  });
  const N = Number(positionals[0] ?? 200_000);
  const SIZE = Number(positionals[1] ?? 1200);
  const seconds = Number(values.seconds);
  const worker = new Worker(new URL(import.meta.url));
  let onDone: (() => void) | undefined;
  worker.on('message', (m: { type: string }) => {
    if (m.type === 'done') onDone?.();
  });
  const payload = Buffer.alloc(SIZE, 7);
  const host = '203.0.113.45';

  const once = (send: () => void): Promise<number> =>
    new Promise((resolve) => {
      worker.postMessage({ type: 'start', n: N });
      const t0 = performance.now();
      onDone = () => resolve(performance.now() - t0);
      send();
    });

  // The machine is shared and small: each way runs ROUNDS times and the median is reported.
  const ROUNDS = 5;
  const run = async (name: string, send: () => void): Promise<number> => {
    const times: number[] = [];
    for (let r = 0; r < ROUNDS; r++) times.push(await once(send));
    times.sort((a, b) => a - b);
    const ms = times[ROUNDS >> 1];
    console.log(
      `${name.padEnd(28)} ${(N / (ms / 1000)).toFixed(0).padStart(10)} datagrams/s  ${((ms * 1000) / N).toFixed(2)} us/datagram (median of ${ROUNDS})`,
    );
    return ms;
  };

  const perDatagram = async (): Promise<number> => {
    // Yield every 1024 datagrams like a socket read burst would, so the worker can drain.
    return run('postMessage per datagram', () => {
      let i = 0;
      const burst = () => {
        for (let k = 0; k < 1024 && i < N; k++, i++) worker.postMessage({ type: 'one', data: payload, host, port: 4433 });
        if (i < N) setImmediate(burst);
      };
      burst();
    });
  };

  const batched = async (perBatch: number): Promise<number> =>
    run(`transferred batches of ${perBatch}`, () => {
      let i = 0;
      const burst = () => {
        const w = new DatagramBatchWriter();
        for (let k = 0; k < 1024 && i < N; k++, i++) {
          if (w.count >= perBatch || !w.fits(SIZE)) {
            const m = w.take()!;
            worker.postMessage({ type: 'batch', buf: m.buf, len: m.len, n: m.n }, [m.buf]);
          }
          w.append(payload, SIZE, host, 4433);
        }
        const m = w.take();
        if (m) worker.postMessage({ type: 'batch', buf: m.buf, len: m.len, n: m.n }, [m.buf]);
        if (i < N) setImmediate(burst);
      };
      burst();
    });

  // ---- the primary's routing rate ----------------------------------------------------------------

  const httpsPort = await freePort();
  const config = validateConfig({
    server: { bindAddress: '127.0.0.1', httpsPort },
    tls: { stateDir: '/tmp/quiclb-bench-quic-transfer' },
    loadBalancer: { backendServers: [{ id: 'b', host: '127.0.0.1', port: 1 }] },
  });
  const state = new SharedState();
  let acked = 0;
  // One worker thread per shard, as in quiclb; each acknowledges what it read, as a shard's quic:out does.
  const shardWorkers = Array.from({ length: SHARDS }, (_, index) => new Worker(new URL(import.meta.url), { workerData: { role: 'shard', index } }));
  const ports: ShardPort[] = shardWorkers.map((w, index) => ({ index, alive: () => true, post: (msg, transfer) => w.postMessage(msg, transfer) }));
  const router = new UdpRouter({ config, state, logger: pino({ level: 'silent' }), shards: ports, quicShards: SHARDS, resetKey: randomBytes(32) });
  for (const w of shardWorkers) {
    w.on('message', (m: { type: string; shard: number; n: number }) => {
      if (m.type !== 'ack') return;
      acked += m.n;
      router.onShardMessage(m.shard, { type: 'quic:out', buf: null, len: 0, n: 0, ack: m.n, newAck: 0 });
      afterAck?.();
    });
  }
  let afterAck: (() => void) | undefined;
  const clients = Array.from({ length: 1000 }, (_, i) => ({ address: `203.0.113.${i % 250}`, port: 20000 + i }));
  const packetPool = (kind: 'fixed' | 'mixed'): Buffer[] => Array.from({ length: 4096 }, (_, i) => shortHeaderPacket(i % SHARDS, sizeMix(kind, SIZE, i)));
  const drops = (): bigint => state.globalCounter(G_DROP_QUEUE_FULL) + state.globalCounter(G_DROP_SHORT_UNKNOWN_CID) + state.globalCounter(G_DROP_BAD_HEADER);

  /**
   * route() N datagrams in read-sized bursts; resolves when every routed datagram is acknowledged. Feeding
   * pauses while more than LAG datagrams wait for their shard (as a socket would make the primary wait), so the
   * router's queue bound is not what is measured; the waits are idle, not spinning, and cost no CPU.
   */
  const LAG = 4096;
  const routeOnce = (packets: Buffer[]): Promise<{ ms: number; cpuMs: number; dropped: bigint }> =>
    new Promise((resolve) => {
      acked = 0;
      const d0 = drops();
      const cpu0 = process.threadCpuUsage();
      const t0 = performance.now();
      let i = 0;
      const settled = (): number => acked + Number(drops() - d0);
      const finish = (): void => {
        const cpu = process.threadCpuUsage(cpu0);
        resolve({ ms: performance.now() - t0, cpuMs: (cpu.user + cpu.system) / 1000, dropped: drops() - d0 });
      };
      const burst = (): void => {
        afterAck = undefined;
        for (let k = 0; k < BURST && i < N; k++, i++) {
          const c = clients[i % clients.length];
          router.route(packets[i % packets.length], c.address, c.port);
        }
        if (i >= N) {
          afterAck = () => {
            if (settled() < N) return;
            afterAck = undefined;
            finish();
          };
          afterAck();
        } else if (i - settled() > LAG) {
          afterAck = () => {
            if (i - settled() < LAG / 2) burst();
          };
        } else {
          setImmediate(burst);
        }
      };
      burst();
    });

  const routeRate = async (name: string, packets: Buffer[]): Promise<void> => {
    const runs: Array<{ ms: number; cpuMs: number; dropped: bigint }> = [];
    for (let r = 0; r < ROUNDS; r++) runs.push(await routeOnce(packets));
    runs.sort((a, b) => a.ms - b.ms);
    const med = runs[ROUNDS >> 1];
    const perCpu = N / (med.cpuMs / 1000);
    console.log(
      `${name.padEnd(40)} ${(N / (med.ms / 1000)).toFixed(0).padStart(9)} datagrams/s  ${perCpu.toFixed(0).padStart(9)} per primary CPU-second ` +
        `(${((med.cpuMs * 1000) / N).toFixed(2)} us CPU each; ${med.dropped} dropped; median of ${ROUNDS})`,
    );
  };

  /** The router behind its real UDP socket for `seconds`, a sender thread blasting short-header datagrams. */
  const socketRate = async (name: string, packets: Buffer[]): Promise<void> => {
    await router.listen();
    const port = router.address().port;
    acked = 0;
    const d0 = drops();
    const senders = Array.from({ length: Math.max(1, Number(values.senders)) }, () => new Worker(new URL(import.meta.url), { workerData: { role: 'sender', port, packets } }));
    // A worker takes a while to start (it loads and type-strips this file): open the window once they send, and
    // a little later.
    await Promise.all(senders.map((w) => new Promise((r) => w.once('message', r))));
    await new Promise((r) => setTimeout(r, 300));
    const a0 = acked;
    const cpu0 = process.threadCpuUsage();
    const t0 = performance.now();
    await new Promise((r) => setTimeout(r, seconds * 1000));
    const cpu = process.threadCpuUsage(cpu0);
    const ms = performance.now() - t0;
    const routed = acked - a0;
    const stopped = senders.map((w) => new Promise<{ sent: number }>((r) => w.once('message', r)));
    for (const w of senders) w.postMessage('stop');
    const sent = (await Promise.all(stopped)).reduce((n, x) => n + x.sent, 0);
    for (const w of senders) await w.terminate();
    await router.close();
    const cpuS = (cpu.user + cpu.system) / 1e6;
    console.log(
      `${name.padEnd(40)} ${(routed / (ms / 1000)).toFixed(0).padStart(9)} datagrams/s  ${(routed / cpuS).toFixed(0).padStart(9)} per primary CPU-second ` +
        `(primary thread ${(cpuS / (ms / 1000)).toFixed(2)} cores; ${senders.length} senders sent ${sent} in all, router dropped ${drops() - d0}; the kernel drops the rest when the socket buffer is full)`,
    );
  };

  /**
   * The other direction: batches of datagrams a shard hands back (quic:out) sent by the primary through the
   * router's socket, one socket.send each, to a sink thread. Datagrams per CPU-second of the primary thread.
   */
  const outboundRate = async (name: string, packets: Buffer[]): Promise<void> => {
    await router.listen();
    const sink = new Worker(new URL(import.meta.url), { workerData: { role: 'sink' } });
    const sinkPort = (await new Promise<{ port: number }>((r) => sink.once('message', r))).port;
    const received = (): Promise<number> =>
      new Promise((r) => {
        sink.once('message', (m: { got: number }) => r(m.got));
        sink.postMessage('count');
      });
    // Batches as a shard builds them (32 datagrams each), built once and handed over again and again.
    const batches = Array.from({ length: 64 }, (_, b) => {
      const w = new DatagramBatchWriter();
      for (let k = 0; k < 32; k++) {
        const p = packets[(b * 32 + k) % packets.length];
        w.append(p, p.length, '127.0.0.1', sinkPort);
      }
      return w.take()!;
    });
    const d0 = drops();
    const cpu0 = process.threadCpuUsage();
    const t0 = performance.now();
    let i = 0;
    await new Promise<void>((resolve) => {
      const burst = (): void => {
        for (let k = 0; k < 4 && i < N; k++, i += 32) {
          const b = batches[(i / 32) % batches.length];
          router.onShardMessage(0, { type: 'quic:out', ack: 0, newAck: 0, buf: b.buf, len: b.len, n: b.n });
        }
        if (i < N) setImmediate(burst);
        else resolve();
      };
      burst();
    });
    // Sends queued in libuv leave on later turns: wait until the sink stops counting.
    let last = -1;
    for (let got = await received(); got !== last; got = await received()) {
      last = got;
      await new Promise((r) => setTimeout(r, 50));
    }
    const cpu = process.threadCpuUsage(cpu0);
    const ms = performance.now() - t0 - 50;
    await sink.terminate();
    await router.close();
    const cpuS = (cpu.user + cpu.system) / 1e6;
    console.log(
      `${name.padEnd(40)} ${(i / (ms / 1000)).toFixed(0).padStart(9)} datagrams/s  ${(i / cpuS).toFixed(0).padStart(9)} per primary CPU-second ` +
        `(${((cpuS * 1e6) / i).toFixed(2)} us CPU each; router dropped ${drops() - d0} at its send-queue bound, sink got ${last})`,
    );
  };

  console.log(`node ${process.version}, ${N} datagrams of ${SIZE} octets, primary -> worker thread`);
  if (!values['route-only']) {
    await perDatagram();
    await batched(8);
    await batched(32);
    await batched(50);
  }
  console.log(`\nrouting through UdpRouter.route() to ${SHARDS} shards (short headers; goal of the per-request-cost issue: >= 250k datagrams/s on one core)`);
  await routeRate(`route(), ${SIZE}-octet datagrams`, packetPool('fixed'));
  await routeRate('route(), mixed (3/4 60-octet ACKs, 1/4 1350)', packetPool('mixed'));
  await socketRate(`UDP socket + route(), mixed, ${seconds}s`, packetPool('mixed'));
  console.log('\nsending what the shards hand back (quic:out), one socket.send per datagram (on loopback the kernel delivers in the sender\'s time)');
  await outboundRate(`quic:out -> socket, ${SIZE}-octet datagrams`, packetPool('fixed'));
  await worker.terminate();
  for (const w of shardWorkers) await w.terminate();
}
