// How datagrams should cross from the primary to a shard thread (issue #3): one postMessage per datagram
// (the Buffer is cloned) against batches in one transferred ArrayBuffer (src/wire/datagram-batch.ts).
// Run: node bench/quic-transfer.ts [datagrams] [size]
// Prints datagrams/s and microseconds per datagram for each way, measured in the same run.
import { Worker, isMainThread, parentPort } from 'node:worker_threads';
import { DatagramBatchWriter, readBatch } from '../src/wire/datagram-batch.ts';

const N = Number(process.argv[2] ?? 200_000);
const SIZE = Number(process.argv[3] ?? 1200);

if (!isMainThread) {
  // The shard side: touch each datagram (as quiche's recv would read it), report when all arrived.
  let seen = 0;
  let sum = 0;
  let target = 0;
  parentPort!.on('message', (m: any) => {
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
  const worker = new Worker(new URL(import.meta.url));
  const payload = Buffer.alloc(SIZE, 7);
  const host = '203.0.113.45';

  const once = (send: () => void): Promise<number> =>
    new Promise((resolve) => {
      worker.postMessage({ type: 'start', n: N });
      const t0 = performance.now();
      worker.once('message', () => resolve(performance.now() - t0));
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

  console.log(`node ${process.version}, ${N} datagrams of ${SIZE} octets, primary -> worker thread`);
  await perDatagram();
  await batched(8);
  await batched(32);
  await batched(50);
  await worker.terminate();
}
