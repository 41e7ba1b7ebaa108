// Starts the QUIC engine for tests: a real UdpRouter on 127.0.0.1 (the primary's side) and N real shard
// worker threads, each running QuicEndpoint (by default with the trivial handler in quic-shard-worker.ts;
// pass `workerUrl` to run another shard entry, e.g. the real src/shard/worker.ts). Also drives the real
// clients nobody here wrote: gtlsclient (ngtcp2) and headless Chromium.
import { Worker, type TransferListItem } from 'node:worker_threads';
import { randomBytes } from 'node:crypto';
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pino from 'pino';
import type { Config } from '../../src/config/types.ts';
import { validateConfig } from '../../src/config/load.ts';
import { SharedState, S_ALIVE } from '../../src/shared/state.ts';
import { ensureSelfSigned, spkiHash } from '../../src/shared/tls-material.ts';
import { UdpRouter, type ShardPort } from '../../src/primary/udp-router.ts';
import type { QuicInMessage, QuicOutMessage } from '../../src/quic/messages.ts';

export const SHARD_WORKER_URL = new URL('./quic-shard-worker.ts', import.meta.url);

/**
 * A Config through the real schema (every default filled in) with test-friendly values; `httpsPort` 0 lets
 * the kernel pick the UDP port. Written in the JSON file's terms, so new config sections need no change here.
 */
export function quicTestConfig(stateDir: string, patch: (c: Config) => void = () => {}): Config {
  const c = validateConfig({
    server: { httpPort: 1, httpsPort: 2, bindAddress: '127.0.0.1', readTimeout: 10_000, writeTimeout: 10_000, idleTimeout: 30_000, shutdownTimeout: 2000 },
    tls: { stateDir },
    quic: { idleTimeout: 10_000, udpBufferSize: 1 << 20 },
    loadBalancer: { strategy: 'least_connections', sessionPersistence: false, affinityCookie: 'QUICLB', connectTimeout: 2000, backendTimeout: 10_000 },
    healthCheck: { enabled: false, interval: 5000, timeout: 2000, path: '/', healthyThreshold: 1, unhealthyThreshold: 2, passiveFailureThreshold: 3 },
    admin: { allowFrom: ['127.0.0.1/32'] },
    logging: { level: 'silent' },
    rateLimit: { maxConnectionsPerClient: 0, maxClients: 1024 },
  });
  c.server.httpPort = 0;
  c.server.httpsPort = 0;
  patch(c);
  return c;
}

export interface QuicHarnessOptions {
  shards?: number;
  /** Adjust the generated config (retryThreshold, connectionMigration, ...). */
  configure?: (c: Config) => void;
  /** Shard entry; receives QuicShardWorkerData as workerData unless `workerData` builds something else. */
  workerUrl?: URL;
  workerData?: (shard: number, h: { config: Config; certFile: string; keyFile: string; state: SharedState; resetKey: Uint8Array }) => unknown;
  /** Stateless reset key of the router and the shards (default: random per harness). */
  resetKey?: Uint8Array;
  /** pino level for the router and the shards (default: env QUIC_TEST_LOG or 'silent'). */
  logLevel?: string;
}

export interface QuicHarness {
  port: number;
  config: Config;
  state: SharedState;
  router: UdpRouter;
  certFile: string;
  keyFile: string;
  /** base64 SPKI sha256 of the certificate (Chromium's --ignore-certificate-errors-spki-list). */
  spki: string;
  dir: string;
  workers: Array<Worker | undefined>;
  resetKey: Uint8Array;
  /** Terminates one shard's thread (as a crash would) and tells the router. */
  killShard(index: number): Promise<void>;
  /** Starts a fresh thread for a killed shard (as the supervisor's restart would); resolves when it is ready. */
  restartShard(index: number): Promise<void>;
  /** Every message a shard posted that was not QUIC traffic (test workers report events this way), with its shard. */
  messages: Array<{ shard: number; msg: any }>;
  /** Posts `msg` to a shard and resolves with its first later message of type `replyType`. */
  ask(shard: number, msg: unknown, replyType: string, timeoutMs?: number): Promise<any>;
  close(): Promise<void>;
}

export async function startQuicHarness(opts: QuicHarnessOptions = {}): Promise<QuicHarness> {
  const count = opts.shards ?? 2;
  const logLevel = opts.logLevel ?? process.env.QUIC_TEST_LOG ?? 'silent';
  const dir = await mkdtemp(path.join(tmpdir(), 'quiclb-quic-'));
  const { certFile, keyFile } = await ensureSelfSigned(dir);
  const spki = spkiHash(await readFile(certFile));
  const config = quicTestConfig(dir, opts.configure);
  const state = new SharedState();
  const resetKey = opts.resetKey ?? randomBytes(32);
  const logger = pino({ level: logLevel }, pino.destination({ dest: 2, sync: true }));
  const workers: Array<Worker | undefined> = new Array(count).fill(undefined);
  const messages: Array<{ shard: number; msg: any }> = [];
  const listeners = new Set<(shard: number, msg: any) => void>();
  const ready: boolean[] = new Array(count).fill(false);
  const shards: ShardPort[] = Array.from({ length: count }, (_, index) => ({
    index,
    alive: () => ready[index] && workers[index] !== undefined,
    post: (msg: QuicInMessage, transfer?: TransferListItem[]) => workers[index]?.postMessage(msg, transfer),
  }));
  const router = new UdpRouter({ config, state, logger, shards, quicShards: count, resetKey });
  await router.listen();
  const port = router.address().port;
  // Shards learn the real port from the 'quic:in' messages; the config keeps 0.
  const startOne = (index: number): Promise<void> =>
    new Promise<void>((resolve, reject) => {
      const w = new Worker(opts.workerUrl ?? SHARD_WORKER_URL, {
        workerData: opts.workerData
          ? opts.workerData(index, { config, certFile, keyFile, state, resetKey })
          : { shard: index, config, certFile, keyFile, stateBuffer: state.buffer, logLevel, resetKey },
      });
      workers[index] = w;
      w.on('message', (msg: any) => {
        if (msg?.type === 'ready') {
          ready[index] = true;
          state.setShardGauge(index, S_ALIVE, 1);
          router.shardUp(index);
          resolve();
          return;
        }
        if (msg?.type === 'quic:out') {
          router.onShardMessage(index, msg as QuicOutMessage);
          return;
        }
        messages.push({ shard: index, msg });
        for (const l of listeners) l(index, msg);
      });
      w.once('error', reject);
      // A shard that dies mid-test would otherwise only show up as handshakes timing out.
      w.on('error', (err) => process.stderr.write(`quic-harness: shard ${index} died: ${err.stack ?? err}\n`));
      w.once('exit', () => {
        ready[index] = false;
        workers[index] = undefined;
        state.setShardGauge(index, S_ALIVE, 0);
        router.shardDown(index);
      });
    });
  // One at a time, so shard 0 is the first thread of the process to load the binding (docs/quiche.md, "Loading and threads").
  for (let i = 0; i < count; i++) await startOne(i);
  const killShard = async (index: number): Promise<void> => {
    const w = workers[index];
    if (!w) return;
    ready[index] = false;
    await w.terminate();
  };
  return {
    port,
    config,
    state,
    router,
    certFile,
    keyFile,
    spki,
    dir,
    workers,
    resetKey,
    killShard,
    restartShard: (index: number) => startOne(index),
    messages,
    ask: (shard, msg, replyType, timeoutMs = 5000) =>
      new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          listeners.delete(l);
          reject(new Error(`shard ${shard} did not answer ${replyType} in ${timeoutMs} ms`));
        }, timeoutMs);
        const l = (from: number, m: any): void => {
          if (from !== shard || m?.type !== replyType) return;
          listeners.delete(l);
          clearTimeout(timer);
          resolve(m);
        };
        listeners.add(l);
        workers[shard]?.postMessage(msg);
      }),
    close: async () => {
      await Promise.all(workers.map((w) => w?.terminate()));
      await router.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

export interface ProcessResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
}

/** Runs a command with a hard time limit (SIGKILL), collecting its output. */
export function runBounded(cmd: string, args: string[], timeoutMs: number): Promise<ProcessResult> {
  return new Promise((resolve) => {
    // Own process group, so a timeout also ends the helpers a browser forks.
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    const killGroup = (): void => {
      try {
        if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    };
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const timer = setTimeout(() => {
      timedOut = true;
      killGroup();
    }, timeoutMs);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      killGroup();
      resolve({ code, signal, stdout, stderr, timedOut });
    });
  });
}

/**
 * gtlsclient (Debian ngtcp2-client) against 127.0.0.1:port. `paths` become https://127.0.0.1:port/<path>;
 * pass `download` to get the bodies written into that directory.
 */
export function gtlsclient(port: number, paths: string[], extra: string[] = [], timeoutMs = 20_000): Promise<ProcessResult> {
  const uris = paths.map((p) => `https://127.0.0.1:${port}${p}`);
  return runBounded(
    'gtlsclient',
    ['-q', '--exit-on-all-streams-close', '--timeout=10s', ...extra, '127.0.0.1', String(port), ...uris],
    timeoutMs,
  );
}

/** Headless Chromium forced onto HTTP/3 for 127.0.0.1:port; returns the DOM and the parsed netlog text. */
export async function chromiumFetch(
  port: number,
  spki: string,
  urlPath = '/',
  timeoutMs = 25_000,
  extraArgs: string[] = [],
): Promise<{ result: ProcessResult; dom: string; netlog: string }> {
  const dir = await mkdtemp(path.join(tmpdir(), 'quiclb-chromium-'));
  const netlogFile = path.join(dir, 'netlog.json');
  try {
    const result = await runBounded(
      '/usr/bin/chromium',
      [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        '--disable-dev-shm-usage',
        `--user-data-dir=${path.join(dir, 'profile')}`,
        '--enable-quic',
        `--origin-to-force-quic-on=127.0.0.1:${port}`,
        `--ignore-certificate-errors-spki-list=${spki}`,
        `--log-net-log=${netlogFile}`,
        ...extraArgs,
        '--dump-dom',
        `https://127.0.0.1:${port}${urlPath}`,
      ],
      timeoutMs,
    );
    let netlog = '';
    try {
      netlog = await readFile(netlogFile, 'utf8');
    } catch {
      // no netlog written (Chromium failed to start)
    }
    return { result, dom: result.stdout, netlog };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
