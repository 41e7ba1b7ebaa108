// Continuous load on quiclb over HTTP/1.1 (undici keep-alive pool), HTTP/2 (node:http2, one session) and
// HTTP/3 (our h3 client, one connection), each with a few requests in flight at all times, until stopped.
// Every answer is tallied: which backend served it (`x-backend`, see id-backend.ts), when, and every failure
// (an error or a status other than 200) with its reason.
import http2 from 'node:http2';
import { Pool } from 'undici';
import { H3Connection } from '../../bench/lib/h3-client.ts';

export type LoadProtocol = 'HTTP/1.1' | 'HTTP/2' | 'HTTP/3';

export interface Served {
  protocol: LoadProtocol;
  backend: string;
  /** performance.now() when the response was complete. */
  at: number;
}

export interface LoadTally {
  served: Served[];
  failures: string[];
}

export interface RunningLoad {
  tally: LoadTally;
  /** Stops issuing requests and resolves when every loop's last request settled. */
  stop(): Promise<LoadTally>;
}

export interface LoadTarget {
  httpPort: number;
  httpsPort: number;
  /** Requests in flight per protocol. */
  concurrency?: number;
  path?: string;
}

export async function startProtocolLoad(target: LoadTarget): Promise<RunningLoad> {
  const concurrency = target.concurrency ?? 3;
  const path = target.path ?? '/load';
  const tally: LoadTally = { served: [], failures: [] };
  let stopping = false;

  const h1 = new Pool(`http://127.0.0.1:${target.httpPort}`, { connections: concurrency, pipelining: 1 });
  const h2 = http2.connect(`https://127.0.0.1:${target.httpsPort}`, { rejectUnauthorized: false });
  h2.on('error', (err) => tally.failures.push(`HTTP/2 session: ${err.message}`));
  await new Promise<void>((resolve, reject) => {
    h2.once('connect', () => resolve());
    h2.once('error', reject);
  });
  const h3 = await H3Connection.connect({ host: '127.0.0.1', port: target.httpsPort });

  const once: Record<LoadProtocol, () => Promise<{ status: number; backend: string }>> = {
    'HTTP/1.1': async () => {
      const res = await h1.request({ path, method: 'GET', headersTimeout: 10_000, bodyTimeout: 10_000 });
      await res.body.text();
      return { status: res.statusCode, backend: String(res.headers['x-backend'] ?? '') };
    },
    'HTTP/2': () =>
      new Promise((resolve, reject) => {
        const req = h2.request({ ':path': path });
        let status = 0;
        let backend = '';
        req.setTimeout(10_000, () => req.close(http2.constants.NGHTTP2_CANCEL));
        req.on('response', (headers) => {
          status = Number(headers[':status']);
          backend = String(headers['x-backend'] ?? '');
        });
        req.on('error', reject);
        req.resume();
        req.on('end', () => resolve({ status, backend }));
        req.on('close', () => (status === 0 ? reject(new Error(`stream closed (code ${req.rstCode})`)) : undefined));
      }),
    'HTTP/3': async () => {
      const res = await h3.request({ path, timeoutMs: 10_000 });
      return { status: res.status, backend: res.headers.find(([n]) => n === 'x-backend')?.[1] ?? '' };
    },
  };

  const loop = async (protocol: LoadProtocol): Promise<void> => {
    while (!stopping) {
      try {
        const { status, backend } = await once[protocol]();
        if (status !== 200) tally.failures.push(`${protocol}: status ${status} from ${backend || 'quiclb'}`);
        else tally.served.push({ protocol, backend, at: performance.now() });
      } catch (err) {
        tally.failures.push(`${protocol}: ${(err as Error).message}`);
        // A broken connection would fail every following request at once: no busy loop.
        await new Promise((r) => setTimeout(r, 20));
      }
    }
  };
  const loops: Promise<void>[] = [];
  for (const protocol of ['HTTP/1.1', 'HTTP/2', 'HTTP/3'] as const) {
    for (let i = 0; i < concurrency; i++) loops.push(loop(protocol));
  }
  return {
    tally,
    async stop() {
      stopping = true;
      await Promise.all(loops);
      await h1.close();
      h2.close();
      h3.close();
      return tally;
    },
  };
}

/** Responses per backend id (of those served by `protocol`, or all). */
export function servedBy(tally: LoadTally, protocol?: LoadProtocol): Map<string, number> {
  const out = new Map<string, number>();
  for (const s of tally.served) if (protocol === undefined || s.protocol === protocol) out.set(s.backend, (out.get(s.backend) ?? 0) + 1);
  return out;
}
