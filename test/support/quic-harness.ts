// Starts the QUIC engine for tests: a real UdpRouter on 127.0.0.1 (the primary's side) and N real shard
// worker threads, each running QuicEndpoint (by default with the trivial handler in quic-shard-worker.ts;
// pass `workerUrl` to run another shard entry, e.g. the real src/shard/worker.ts). Also drives the real
// clients nobody here wrote: gtlsclient (ngtcp2) and headless Chromium.
import { Worker, type TransferListItem } from 'node:worker_threads';
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pino from 'pino';
import type { Config } from '../../src/config/types.ts';
import { SharedState, S_ALIVE } from '../../src/shared/state.ts';
import { ensureSelfSigned, spkiHash } from '../../src/shared/tls-material.ts';
import { UdpRouter, type ShardPort } from '../../src/primary/udp-router.ts';

export const SHARD_WORKER_URL = new URL('./quic-shard-worker.ts', import.meta.url);

/** Every field of Config with test-friendly values; `httpsPort` 0 lets the kernel pick the UDP port. */
export function quicTestConfig(stateDir: string, patch: (c: Config) => void = () => {}): Config {
  const c: Config = {
    server: {
      httpPort: 0,
      httpsPort: 0,
      bindAddress: '127.0.0.1',
      readTimeoutMs: 10_000,
      writeTimeoutMs: 10_000,
      idleTimeoutMs: 30_000,
      maxHeaderSize: 16384,
      maxBodySize: 0,
      redirectHttpToHttps: false,
      shutdownTimeoutMs: 2000,
    },
    tls: { stateDir },
    quic: {
      enabled: true,
      idleTimeoutMs: 10_000,
      maxStreamsBidi: 100,
      initialMaxData: 10 * 1024 * 1024,
      initialMaxStreamData: 1024 * 1024,
      maxUdpPayloadSize: 1350,
      retryThreshold: 1000,
      udpBufferSize: 1 << 20,
    },
    loadBalancer: {
      strategy: 'least_connections',
      sessionPersistence: false,
      connectionMigration: true,
      affinityCookie: 'QUICLB',
      backendServers: [],
      routes: [],
      retryIdempotent: true,
      connectTimeoutMs: 2000,
      backendTimeoutMs: 10_000,
    },
    healthCheck: {
      enabled: false,
      intervalMs: 5000,
      timeoutMs: 2000,
      path: '/',
      expectStatus: '2xx',
      healthyThreshold: 1,
      unhealthyThreshold: 2,
      passiveFailureThreshold: 3,
    },
    moodle: { xAccelRedirectPrefix: '/dataroot/', deniedPaths: [], deniedPathStatus: 404, sessionCookie: 'MoodleSession', proxyHeaders: [], enableCaching: false },
    admin: { allowFrom: ['127.0.0.1/32'], port: 0 },
    logging: { level: 'silent', format: 'json', accessLog: false },
  };
  patch(c);
  return c;
}

export interface QuicHarnessOptions {
  shards?: number;
  /** Adjust the generated config (retryThreshold, connectionMigration, ...). */
  configure?: (c: Config) => void;
  /** Shard entry; receives QuicShardWorkerData as workerData unless `workerData` builds something else. */
  workerUrl?: URL;
  workerData?: (shard: number, h: { config: Config; certFile: string; keyFile: string; state: SharedState }) => unknown;
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
  /** Terminates one shard's thread (as a crash would) and tells the router. */
  killShard(index: number): Promise<void>;
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
  const logger = pino({ level: logLevel }, pino.destination({ dest: 2, sync: true }));
  const workers: Array<Worker | undefined> = new Array(count).fill(undefined);
  const ready: boolean[] = new Array(count).fill(false);
  const shards: ShardPort[] = Array.from({ length: count }, (_, index) => ({
    index,
    alive: () => ready[index] && workers[index] !== undefined,
    post: (msg: unknown, transfer?: TransferListItem[]) => workers[index]?.postMessage(msg, transfer),
  }));
  const router = new UdpRouter({ config, state, logger, shards, quicShards: count });
  await router.listen();
  const port = router.address().port;
  // Shards learn the real port from the 'quic:in' messages; the config keeps 0.
  const startOne = (index: number): Promise<void> =>
    new Promise<void>((resolve, reject) => {
      const w = new Worker(opts.workerUrl ?? SHARD_WORKER_URL, {
        workerData: opts.workerData
          ? opts.workerData(index, { config, certFile, keyFile, state })
          : { shard: index, config, certFile, keyFile, stateBuffer: state.buffer, logLevel },
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
        router.onShardMessage(index, msg);
      });
      w.once('error', reject);
      w.once('exit', () => {
        ready[index] = false;
        workers[index] = undefined;
        state.setShardGauge(index, S_ALIVE, 0);
        router.shardDown(index);
      });
    });
  // One at a time: see QUIC_SHARD_START_NOTE in src/quic/quiche.ts (the binding's per-thread registration races).
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
    killShard,
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
