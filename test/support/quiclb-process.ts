// Starts the real quiclb command (bin/quiclb.js start) in a child process on 127.0.0.1 with a generated
// config, waits for its "quiclb ready" log line, and stops it with SIGTERM.
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from '../../bench/lib/procs.ts';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const BIN = path.join(ROOT, 'bin/quiclb.js');

export interface QuiclbProcess {
  child: ChildProcess;
  httpPort: number;
  httpsPort: number;
  configFile: string;
  stateDir: string;
  /** Every stdout/stderr line so far (pino JSON). */
  lines: string[];
  logs(): Array<Record<string, unknown>>;
  waitForLog(pred: (entry: Record<string, unknown>) => boolean, timeoutMs?: number): Promise<Record<string, unknown>>;
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

export interface StartOptions {
  /** Deep-merged over the generated base config. */
  config: Record<string, any>;
  workers?: number;
  env?: Record<string, string>;
  stateDir?: string;
}

function merge(base: Record<string, any>, over: Record<string, any>): Record<string, any> {
  const out: Record<string, any> = { ...base };
  for (const [k, v] of Object.entries(over)) {
    out[k] = v && typeof v === 'object' && !Array.isArray(v) && typeof base[k] === 'object' ? merge(base[k], v) : v;
  }
  return out;
}

export async function startQuiclb(opts: StartOptions): Promise<QuiclbProcess> {
  const dir = await mkdtemp(path.join(tmpdir(), 'quiclb-test-'));
  const httpPort = await freePort();
  const httpsPort = await freePort();
  const stateDir = opts.stateDir ?? path.join(dir, 'state');
  const config = merge(
    {
      server: { httpPort, httpsPort, bindAddress: '127.0.0.1', shutdownTimeout: '3s' },
      tls: { stateDir },
      logging: { level: 'info', format: 'json' },
      healthCheck: { interval: '250ms', timeout: '250ms', healthyThreshold: 2, unhealthyThreshold: 2 },
    },
    opts.config,
  );
  const configFile = path.join(dir, 'config.json');
  await writeFile(configFile, JSON.stringify(config, null, 2));
  const child = spawn(process.execPath, [BIN, 'start', '--config', configFile, '--workers', String(opts.workers ?? 2)], {
    cwd: ROOT,
    env: { ...process.env, ...opts.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: string[] = [];
  const waiters = new Set<() => void>();
  for (const stream of [child.stdout!, child.stderr!]) {
    let buf = '';
    stream.setEncoding('utf8');
    stream.on('data', (chunk: string) => {
      buf += chunk;
      let nl;
      while ((nl = buf.indexOf('\n')) >= 0) {
        lines.push(buf.slice(0, nl));
        buf = buf.slice(nl + 1);
      }
      for (const w of waiters) w();
    });
  }
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const parse = () =>
    lines.flatMap((l) => {
      try {
        return [JSON.parse(l) as Record<string, unknown>];
      } catch {
        return [];
      }
    });
  const waitForLog = (pred: (e: Record<string, unknown>) => boolean, timeoutMs = 15_000) =>
    new Promise<Record<string, unknown>>((resolve, reject) => {
      const check = () => {
        const hit = parse().find(pred);
        if (hit) {
          waiters.delete(check);
          clearTimeout(timer);
          resolve(hit);
        }
      };
      const timer = setTimeout(() => {
        waiters.delete(check);
        reject(new Error(`timed out waiting for a log line; last lines:\n${lines.slice(-20).join('\n')}`));
      }, timeoutMs);
      waiters.add(check);
      void exited.then(() => {
        if (waiters.has(check)) {
          waiters.delete(check);
          clearTimeout(timer);
          reject(new Error(`quiclb exited early:\n${lines.slice(-30).join('\n')}`));
        }
      });
      check();
    });
  const proc: QuiclbProcess = {
    child,
    httpPort,
    httpsPort,
    configFile,
    stateDir,
    lines,
    logs: parse,
    waitForLog,
    async stop(signal: NodeJS.Signals = 'SIGTERM') {
      if (child.exitCode !== null) return child.exitCode;
      child.kill(signal);
      const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
      const code = await exited;
      clearTimeout(timer);
      return code;
    },
  };
  process.once('exit', () => child.kill('SIGKILL'));
  await waitForLog((e) => e.msg === 'quiclb ready', 20_000);
  return proc;
}
