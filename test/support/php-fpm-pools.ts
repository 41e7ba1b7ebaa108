// A php-fpm master (Debian's binary, our own config) with two pools and no web server in front: one listening on
// a unix socket, one on 127.0.0.1:<free port>, for tests that speak FastCGI directly (src/fastcgi). PHP's log
// goes to FastCGI STDERR (no error_log file), bodies stream (enable_post_data_reading = 0).

import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, openSync, closeSync, readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from '../../bench/lib/procs.ts';
import { findPhpFpm } from './php-backends.ts';

export const FASTCGI_FIXTURES_DIR = fileURLToPath(new URL('../fixtures/fastcgi/', import.meta.url)).replace(/\/$/, '');
export const PHP_FIXTURES_DIR = fileURLToPath(new URL('../fixtures/php/', import.meta.url)).replace(/\/$/, '');

export interface PhpFpmPools {
  dir: string;
  socketPath: string;
  /** A pool whose children exit after every request (pm.max_requests = 1): kept connections close after END_REQUEST. */
  recycleSocketPath: string;
  host: '127.0.0.1';
  port: number;
  /** Kills the whole php-fpm (master and children) with SIGTERM and removes the dir. */
  stop(): Promise<void>;
}

const isRoot = process.getuid?.() === 0;

function pool(name: string, listen: string, children: number, maxRequests = 0): string {
  return [
    `[${name}]`,
    ...(isRoot ? ['user = root', 'group = root'] : []),
    `listen = ${listen}`,
    'listen.mode = 0666',
    'listen.backlog = 511',
    'pm = static',
    `pm.max_children = ${children}`,
    `pm.max_requests = ${maxRequests}`,
    'catch_workers_output = yes',
    'decorate_workers_output = no',
    '',
  ].join('\n');
}

const PHP_INI = [
  'post_max_size = 0',
  'enable_post_data_reading = 0',
  'memory_limit = 128M',
  'output_buffering = 0',
  'zlib.output_compression = 0',
  'max_execution_time = 120',
  'display_errors = 0',
  'log_errors = 1',
  'opcache.enable = 0',
  '',
].join('\n');

async function canConnect(opts: { path: string } | { host: string; port: number }): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(opts as never);
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

const live = new Set<ChildProcess>();
process.once('exit', () => {
  for (const c of live) c.kill('SIGTERM');
});

/** Starts php-fpm with a unix-socket pool and a TCP pool of `children` static children each. */
export async function startPhpFpmPools(children = { unix: 4, tcp: 4 }): Promise<PhpFpmPools> {
  const dir = await mkdtemp(join(tmpdir(), 'quiclb-fpm-'));
  const socketPath = join(dir, 'fpm.sock');
  const recycleSocketPath = join(dir, 'recycle.sock');
  const port = await freePort();
  const conf = ['[global]', `pid = ${dir}/php-fpm.pid`, `error_log = ${dir}/php-fpm.log`, 'daemonize = no', '', pool('unix', socketPath, children.unix), pool('tcp', `127.0.0.1:${port}`, children.tcp), pool('recycle', recycleSocketPath, 2, 1)].join('\n');
  await writeFile(join(dir, 'php-fpm.conf'), conf);
  await writeFile(join(dir, 'php.ini'), PHP_INI);
  const out = openSync(join(dir, 'php-fpm.out'), 'a');
  // -F: foreground, so the master is our child; -R: allowed to run as root (CI runs as root).
  const child = spawn(findPhpFpm(), ['-F', '-R', '-y', join(dir, 'php-fpm.conf'), '-c', join(dir, 'php.ini')], { stdio: ['ignore', out, out] });
  closeSync(out);
  child.unref();
  live.add(child);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  exited.then(() => live.delete(child));
  const stop = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(t);
    }
    await rm(dir, { recursive: true, force: true });
  };
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) break;
    if (existsSync(socketPath) && (await canConnect({ path: socketPath })) && (await canConnect({ path: recycleSocketPath })) && (await canConnect({ host: '127.0.0.1', port }))) {
      return { dir, socketPath, recycleSocketPath, host: '127.0.0.1', port, stop };
    }
    await new Promise((r) => setTimeout(r, 25));
  }
  const log = readFileSync(join(dir, 'php-fpm.log'), 'utf8').slice(-2000);
  await stop();
  throw new Error(`php-fpm did not start listening within 10 s:\n${log}`);
}
