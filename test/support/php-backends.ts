// Real Moodle-like backends for integration tests: one php-fpm master (Debian's binary, our own config)
// serving test/fixtures/php, fronted by N nginx instances on 127.0.0.1, one per backend. Each backend has
// its own directory holding its nginx config and logs, its PHP session store and its health flag file,
// so sessions do not carry over between backends and a health check can fail without a stop.
//
// Nothing here relies on the distribution's nginx/php-fpm services: every process is ours, started from
// configs written into a temp dir, and killed (SIGTERM) when the set stops or the test process exits.

import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { closeSync, existsSync, openSync, readdirSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Client } from 'undici';
import { freePort } from '../../bench/lib/procs.ts';

export const PHP_FIXTURES_DIR = fileURLToPath(new URL('../fixtures/php/', import.meta.url)).replace(/\/$/, '');

export interface PhpBackendOptions {
  /** php-fpm children shared by all backends of the set (pm = static). Default max(8, 4 * n). */
  phpChildren?: number;
  /** Backend ids; default backend-1 .. backend-n. */
  ids?: string[];
  /** How long start-up (and each backend restart) may take before failing. Default 10 s. */
  startTimeoutMs?: number;
}

export interface PhpBackend {
  readonly id: string;
  readonly host: '127.0.0.1';
  readonly port: number;
  /** http://127.0.0.1:port */
  readonly origin: string;
  /** This backend's own directory: nginx.conf, logs (error.log, access.log), sessions/, health flag. */
  readonly dir: string;
  /** Whether its nginx is running (false between stop() and start()). */
  readonly running: boolean;
  /** Makes admin/cli/healthcheck.php answer 200 (true) or 503 (false); the backend keeps serving. */
  setHealthy(ok: boolean): Promise<void>;
  /** Kills this backend's nginx, so connections to its port are refused: a dead backend. */
  stop(): Promise<void>;
  /** Starts its nginx again on the same port and waits until it answers. */
  start(): Promise<void>;
}

export interface PhpBackendSet {
  backends: PhpBackend[];
  /** Temp dir holding everything; removed by stop(). */
  dir: string;
  stop(): Promise<void>;
}

export type BackendHarnessErrorCode = 'QLB_TEST_BIN_MISSING' | 'QLB_TEST_BACKEND_START';

export class BackendHarnessError extends Error {
  readonly code: BackendHarnessErrorCode;
  constructor(code: BackendHarnessErrorCode, message: string) {
    super(message);
    this.name = 'BackendHarnessError';
    this.code = code;
  }
}

// ---------------------------------------------------------------------------------------------------
// Download pattern (must match test/fixtures/php/download.php).

const DOWNLOAD_BLOCK = 65536;

function downloadBlockTail(seed: string | number): Buffer {
  const parts: Buffer[] = [];
  for (let i = 0; i < DOWNLOAD_BLOCK / 32; i++) {
    parts.push(createHash('sha256').update(`${seed}:${i}`).digest());
  }
  return Buffer.concat(parts).subarray(8);
}

/** Hex sha256 of what download.php?bytes=N&seed=S sends. */
export function expectedDownloadSha256(bytes: number, seed: string | number): string {
  const tail = downloadBlockTail(seed);
  const hash = createHash('sha256');
  const index = Buffer.alloc(8);
  for (let k = 0, sent = 0; sent < bytes; k++) {
    index.writeBigUInt64BE(BigInt(k));
    const n = Math.min(DOWNLOAD_BLOCK, bytes - sent);
    if (n <= 8) {
      hash.update(index.subarray(0, n));
    } else {
      hash.update(index);
      hash.update(tail.subarray(0, n - 8));
    }
    sent += n;
  }
  return hash.digest('hex');
}

// ---------------------------------------------------------------------------------------------------
// Binaries.

function onPath(name: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (dir !== '' && existsSync(join(dir, name))) return join(dir, name);
  }
  return undefined;
}

/** Debian's nginx (any flavour), or $QUICLB_NGINX. */
export function findNginx(): string {
  const found = process.env.QUICLB_NGINX ?? (existsSync('/usr/sbin/nginx') ? '/usr/sbin/nginx' : onPath('nginx'));
  if (found === undefined) {
    throw new BackendHarnessError('QLB_TEST_BIN_MISSING', 'nginx not found: run scripts/ci-deps.sh or set QUICLB_NGINX');
  }
  return found;
}

/** Debian's php-fpmX.Y with the highest version (any PHP minor works), or $QUICLB_PHP_FPM. */
export function findPhpFpm(): string {
  if (process.env.QUICLB_PHP_FPM !== undefined) return process.env.QUICLB_PHP_FPM;
  for (const dir of ['/usr/sbin', ...(process.env.PATH ?? '').split(delimiter)]) {
    let names: string[];
    try {
      names = readdirSync(dir).filter((n) => /^php-fpm(\d+(\.\d+)*)?$/.test(n));
    } catch {
      continue;
    }
    names.sort((a, b) => b.localeCompare(a, 'en', { numeric: true }));
    if (names.length > 0) return join(dir, names[0]);
  }
  throw new BackendHarnessError('QLB_TEST_BIN_MISSING', 'php-fpm not found: run scripts/ci-deps.sh or set QUICLB_PHP_FPM');
}

// ---------------------------------------------------------------------------------------------------
// Process bookkeeping: whatever we start is stopped on exit even when a test forgets to.

const liveChildren = new Set<ChildProcess>();
const liveDirs = new Set<string>();
let exitHooksInstalled = false;

function cleanupSync(): void {
  // SIGTERM, not SIGKILL: an nginx or php-fpm master killed outright would leave its workers behind.
  const pids: number[] = [];
  for (const child of liveChildren) {
    try {
      child.kill('SIGTERM');
      if (child.pid !== undefined) pids.push(child.pid);
    } catch {
      // already gone
    }
  }
  liveChildren.clear();
  if (liveDirs.size === 0) return;
  // The masters need a moment to shut down and may still write into their dirs, and an exiting process
  // cannot wait for them; a detached shell waits (at most 5 s each) and then removes the dirs.
  const script = [
    'for p in $QUICLB_PIDS; do',
    '  i=0',
    '  while [ "$i" -lt 50 ]; do',
    '    s=$(ps -o stat= -p "$p" 2>/dev/null) || break',
    '    case "$s" in Z*) break ;; esac',
    '    sleep 0.1; i=$((i + 1))',
    '  done',
    'done',
    'rm -rf -- "$@"',
  ].join('\n');
  const dirs = [...liveDirs];
  liveDirs.clear();
  try {
    const env = { ...process.env, QUICLB_PIDS: pids.join(' ') };
    spawn('sh', ['-c', script, 'sh', ...dirs], { detached: true, stdio: 'ignore', env }).unref();
  } catch {
    // best effort: the dirs live under the system temp dir
  }
}

function installExitHooks(): void {
  if (exitHooksInstalled) return;
  exitHooksInstalled = true;
  process.once('exit', cleanupSync);
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      cleanupSync();
      // Keep the default meaning of the signal unless someone else handles it.
      if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
    });
  }
}

interface Managed {
  child: ChildProcess;
  exited: Promise<void>;
  outputFile: string;
}

function startProcess(bin: string, args: string[], outputFile: string): Managed {
  installExitHooks();
  const fd = openSync(outputFile, 'a');
  let child: ChildProcess;
  try {
    child = spawn(bin, args, { stdio: ['ignore', fd, fd] });
  } finally {
    closeSync(fd);
  }
  // A test that forgets stop() must not hang the runner; the exit hook still kills the process.
  child.unref();
  liveChildren.add(child);
  const exited = new Promise<void>((resolve) => {
    child.once('exit', () => {
      liveChildren.delete(child);
      resolve();
    });
    child.once('error', () => {
      liveChildren.delete(child);
      resolve();
    });
  });
  return { child, exited, outputFile };
}

function hasExited(p: Managed): boolean {
  return p.child.exitCode !== null || p.child.signalCode !== null || !liveChildren.has(p.child);
}

async function stopProcess(p: Managed, timeoutMs = 5000): Promise<void> {
  if (hasExited(p)) return;
  p.child.kill('SIGTERM');
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<boolean>((resolve) => {
    timer = setTimeout(() => resolve(true), timeoutMs);
  });
  const late = await Promise.race([p.exited.then(() => false), timedOut]);
  clearTimeout(timer);
  if (late) {
    p.child.kill('SIGKILL');
    await p.exited;
  }
}

function tail(file: string, max = 2000): string {
  try {
    const text = readFileSync(file, 'utf8');
    return text.length > max ? text.slice(-max) : text;
  } catch {
    return '';
  }
}

// ---------------------------------------------------------------------------------------------------
// Configs.

const isRoot = process.getuid?.() === 0;

function phpIni(dir: string): string {
  return [
    'post_max_size = 0', // no cap on bodies: upload.php streams them
    'enable_post_data_reading = 0', // php://input then reads straight from FastCGI, never buffered whole
    'memory_limit = 128M',
    'output_buffering = 0',
    'zlib.output_compression = 0',
    'implicit_flush = 0',
    'max_execution_time = 120',
    'display_errors = 0',
    'log_errors = 1',
    `error_log = ${dir}/php-errors.log`,
    'session.save_handler = files',
    'session.use_strict_mode = 1', // an unknown MoodleSession id gets a new session, as in Moodle
    'session.use_cookies = 1',
    'session.use_only_cookies = 1',
    'session.gc_probability = 0',
    'opcache.enable = 1',
    '',
  ].join('\n');
}

function phpFpmConf(dir: string, children: number): string {
  return [
    '[global]',
    `pid = ${dir}/php-fpm.pid`,
    `error_log = ${dir}/php-fpm.log`,
    'daemonize = no',
    '',
    '[quiclb]',
    ...(isRoot ? ['user = root', 'group = root'] : []),
    `listen = ${dir}/php-fpm.sock`,
    'listen.mode = 0666',
    'listen.backlog = 511',
    'pm = static',
    `pm.max_children = ${children}`,
    'catch_workers_output = yes',
    'decorate_workers_output = no',
    '',
  ].join('\n');
}

function nginxConf(b: { id: string; port: number; dir: string }, fpmSocket: string): string {
  const q = (s: string): string => JSON.stringify(s); // nginx accepts double-quoted strings with \" escapes
  return `
${isRoot ? 'user root;' : ''}
worker_processes 1;
pid ${b.dir}/nginx.pid;
error_log ${b.dir}/error.log warn;
events { worker_connections 4096; }
http {
  default_type application/octet-stream;
  access_log ${b.dir}/access.log;
  client_body_temp_path ${b.dir}/tmp/client_body;
  proxy_temp_path ${b.dir}/tmp/proxy;
  fastcgi_temp_path ${b.dir}/tmp/fastcgi;
  uwsgi_temp_path ${b.dir}/tmp/uwsgi;
  scgi_temp_path ${b.dir}/tmp/scgi;
  keepalive_timeout 65s;
  keepalive_requests 100000;
  client_max_body_size 0;
  server {
    listen 127.0.0.1:${b.port};
    server_name _;
    root ${PHP_FIXTURES_DIR};
    index index.php;
    location ~ ^/_ { return 404; }
    location ~ \\.php$ {
      # Unknown scripts (Moodle URLs such as /course/view.php) echo the request like any other path.
      try_files $uri /index.php$is_args$args;
      fastcgi_pass unix:${fpmSocket};
      # Stream both ways: uploads reach PHP as they arrive, downloads leave as PHP flushes.
      fastcgi_request_buffering off;
      fastcgi_buffering off;
      fastcgi_read_timeout 120s;
      fastcgi_param QUERY_STRING $query_string;
      fastcgi_param REQUEST_METHOD $request_method;
      fastcgi_param CONTENT_TYPE $content_type;
      fastcgi_param CONTENT_LENGTH $content_length;
      fastcgi_param SCRIPT_NAME $fastcgi_script_name;
      fastcgi_param SCRIPT_FILENAME $document_root$fastcgi_script_name;
      fastcgi_param REQUEST_URI $request_uri;
      fastcgi_param DOCUMENT_URI $document_uri;
      fastcgi_param DOCUMENT_ROOT $document_root;
      fastcgi_param SERVER_PROTOCOL $server_protocol;
      fastcgi_param REQUEST_SCHEME $scheme;
      fastcgi_param GATEWAY_INTERFACE CGI/1.1;
      fastcgi_param SERVER_SOFTWARE nginx;
      fastcgi_param REMOTE_ADDR $remote_addr;
      fastcgi_param REMOTE_PORT $remote_port;
      fastcgi_param SERVER_ADDR $server_addr;
      fastcgi_param SERVER_PORT $server_port;
      fastcgi_param SERVER_NAME $host;
      fastcgi_param REDIRECT_STATUS 200;
      fastcgi_param BACKEND_ID ${q(b.id)};
      fastcgi_param BACKEND_DIR ${q(b.dir)};
      # Each backend its own session store, like Moodle nodes without shared sessions.
      fastcgi_param PHP_VALUE ${q(`session.save_path=${b.dir}/sessions`)};
    }
    # Any other path echoes the request too, so tests can use Moodle-like URLs freely.
    location / { try_files $uri $uri/ /index.php$is_args$args; }
  }
}
`;
}

// ---------------------------------------------------------------------------------------------------
// Start-up.

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls GET / until this backend answers 200 with its own id. */
async function waitReady(id: string, port: number, watched: Managed[], timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = 'no answer yet';
  while (Date.now() < deadline) {
    for (const p of watched) {
      if (hasExited(p)) {
        throw new BackendHarnessError('QLB_TEST_BACKEND_START', `${id}: process exited during start-up:\n${tail(p.outputFile)}`);
      }
    }
    const client = new Client(`http://127.0.0.1:${port}`, { connectTimeout: 500, headersTimeout: 2000, bodyTimeout: 2000 });
    try {
      const res = await client.request({ method: 'GET', path: '/index.php', headers: { connection: 'close' } });
      const text = await res.body.text();
      if (res.statusCode === 200 && (JSON.parse(text) as { backend?: string }).backend === id) return;
      last = `HTTP ${res.statusCode}: ${text.slice(0, 200)}`;
    } catch (err) {
      last = (err as Error).message;
    } finally {
      await client.destroy().catch(() => {});
    }
    await sleep(25);
  }
  throw new BackendHarnessError('QLB_TEST_BACKEND_START', `${id} on port ${port} not ready after ${timeoutMs} ms: ${last}`);
}

interface BackendState {
  id: string;
  port: number;
  dir: string;
  nginx: Managed | undefined;
}

/**
 * Starts n backends on 127.0.0.1 (one php-fpm master, n nginx) and resolves once every one answers.
 * Each backend's nginx passes BACKEND_ID, BACKEND_DIR and its own session.save_path to PHP.
 */
export async function startPhpBackends(n: number, opts: PhpBackendOptions = {}): Promise<PhpBackendSet> {
  if (!Number.isInteger(n) || n < 1) throw new RangeError(`startPhpBackends: n must be a positive integer, got ${n}`);
  const nginxBin = findNginx();
  const phpFpmBin = findPhpFpm();
  const timeoutMs = opts.startTimeoutMs ?? 10_000;
  const ids = opts.ids ?? Array.from({ length: n }, (_, i) => `backend-${i + 1}`);
  if (ids.length !== n) throw new RangeError(`startPhpBackends: ${n} backends but ${ids.length} ids`);

  const root = await mkdtemp(join(tmpdir(), 'quiclb-php-'));
  liveDirs.add(root);
  const fpmSocket = join(root, 'php-fpm.sock');
  await writeFile(join(root, 'php.ini'), phpIni(root));
  await writeFile(join(root, 'php-fpm.conf'), phpFpmConf(root, opts.phpChildren ?? Math.max(8, 4 * n)));

  const states: BackendState[] = [];
  for (const id of ids) {
    const dir = join(root, id.replace(/[^A-Za-z0-9_.-]/g, '_'));
    await mkdir(join(dir, 'sessions'), { recursive: true });
    await mkdir(join(dir, 'tmp'), { recursive: true });
    await writeFile(join(dir, 'health'), 'healthy\n');
    const state: BackendState = { id, port: await freePort(), dir, nginx: undefined };
    await writeFile(join(dir, 'nginx.conf'), nginxConf(state, fpmSocket));
    states.push(state);
  }

  // -F: foreground, so the master is our child; -R: allowed to run as root (CI runs as root).
  const fpm = startProcess(phpFpmBin, ['-F', '-R', '-y', join(root, 'php-fpm.conf'), '-c', join(root, 'php.ini')], join(root, 'php-fpm.out'));
  const spawnNginx = (s: BackendState): Managed =>
    // -e: the error log before the config is read, else nginx tries /var/log/nginx.
    startProcess(nginxBin, ['-p', s.dir, '-c', join(s.dir, 'nginx.conf'), '-e', join(s.dir, 'error.log'), '-g', 'daemon off;'], join(s.dir, 'nginx.out'));

  let stopped = false;
  const stopAll = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    await Promise.all(states.map((s) => (s.nginx === undefined ? undefined : stopProcess(s.nginx))));
    await stopProcess(fpm);
    await rm(root, { recursive: true, force: true, maxRetries: 3 });
    liveDirs.delete(root);
  };

  try {
    for (const s of states) s.nginx = spawnNginx(s);
    await Promise.all(states.map((s) => waitReady(s.id, s.port, [fpm, s.nginx as Managed], timeoutMs)));
  } catch (err) {
    const logs = [join(root, 'php-fpm.log'), ...states.map((s) => join(s.dir, 'error.log'))].map((f) => tail(f, 1000)).join('\n');
    await stopAll();
    if (err instanceof BackendHarnessError) err.message += `\n--- logs ---\n${logs}`;
    throw err;
  }

  const backends: PhpBackend[] = states.map((s) => ({
    id: s.id,
    host: '127.0.0.1',
    port: s.port,
    origin: `http://127.0.0.1:${s.port}`,
    dir: s.dir,
    get running(): boolean {
      return s.nginx !== undefined && !hasExited(s.nginx);
    },
    async setHealthy(ok: boolean): Promise<void> {
      await writeFile(join(s.dir, 'health'), ok ? 'healthy\n' : 'unhealthy\n');
    },
    async stop(): Promise<void> {
      if (s.nginx !== undefined) await stopProcess(s.nginx);
      s.nginx = undefined;
    },
    async start(): Promise<void> {
      if (stopped) throw new BackendHarnessError('QLB_TEST_BACKEND_START', `${s.id}: the backend set was stopped`);
      if (s.nginx !== undefined && !hasExited(s.nginx)) return;
      s.nginx = spawnNginx(s);
      await waitReady(s.id, s.port, [fpm, s.nginx], timeoutMs);
    },
  }));

  return { backends, dir: root, stop: stopAll };
}
