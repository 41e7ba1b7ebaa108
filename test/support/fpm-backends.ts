// php-fpm backends for quiclb's FastCGI mode, no web server anywhere: one php-fpm master per backend (Debian's
// binary, our own config), listening on a unix socket or on 127.0.0.1:<free port>, so one backend can be killed
// and restarted without touching the others. Each passes BACKEND_ID and BACKEND_DIR to PHP (env[], seen in
// $_SERVER as nginx's fastcgi_param gives them to test/fixtures/php) and has its own session store and health
// flag file, as the nginx backends of php-backends.ts do.
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../../bench/lib/procs.ts';
import { findPhpFpm } from './php-backends.ts';

export interface FpmBackendSpec {
  id: string;
  listen: 'unix' | 'tcp';
  /** Static children (default 4). */
  children?: number;
}

export interface FpmBackend {
  readonly id: string;
  readonly dir: string;
  /** Unix socket path, or undefined for TCP. */
  readonly socketPath: string | undefined;
  readonly port: number | undefined;
  /** The entry for quiclb's loadBalancer.backendServers. */
  config(extra?: Record<string, unknown>): Record<string, unknown>;
  /** admin/cli/healthcheck.php answers 200 (true) or 503 {"status":"unhealthy"} (false). */
  setHealthy(ok: boolean): Promise<void>;
  /** SIGKILL to the master and every child at once (its process group): php-fpm dies mid-whatever. */
  kill(): Promise<void>;
  /** Starts it again on the same socket or port. */
  start(): Promise<void>;
  readonly running: boolean;
}

export interface FpmBackendSet {
  backends: FpmBackend[];
  dir: string;
  stop(): Promise<void>;
}

const isRoot = process.getuid?.() === 0;

const PHP_INI = [
  'post_max_size = 0',
  'enable_post_data_reading = 0', // php://input streams from STDIN (upload.php hashes it as it arrives)
  'memory_limit = 128M',
  'output_buffering = 0',
  'zlib.output_compression = 0',
  'implicit_flush = 0',
  'max_execution_time = 120',
  'display_errors = 0',
  'log_errors = 1',
  'session.save_handler = files',
  'session.use_strict_mode = 1', // an unknown MoodleSession id gets a new session, as in Moodle
  'session.use_cookies = 1',
  'session.use_only_cookies = 1',
  'session.gc_probability = 0',
  'opcache.enable = 0',
  '',
].join('\n');

function fpmConf(dir: string, id: string, listen: string, children: number): string {
  return [
    '[global]',
    `pid = ${dir}/php-fpm.pid`,
    `error_log = ${dir}/php-fpm.log`,
    'daemonize = no',
    '',
    `[${id.replace(/[^A-Za-z0-9_]/g, '_')}]`,
    ...(isRoot ? ['user = root', 'group = root'] : []),
    `listen = ${listen}`,
    'listen.mode = 0666',
    'listen.backlog = 511',
    'pm = static',
    `pm.max_children = ${children}`,
    'catch_workers_output = yes',
    'decorate_workers_output = no',
    `env[BACKEND_ID] = ${id}`,
    `env[BACKEND_DIR] = ${dir}`,
    `php_admin_value[session.save_path] = ${dir}/sessions`,
    '',
  ].join('\n');
}

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
  for (const c of live) if (c.pid !== undefined) killGroup(c.pid, 'SIGKILL');
});

function killGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    // already gone
  }
}

export async function startFpmBackends(specs: FpmBackendSpec[]): Promise<FpmBackendSet> {
  const root = await mkdtemp(join(tmpdir(), 'quiclb-fpmlb-'));
  const bin = findPhpFpm();
  const backends = await Promise.all(
    specs.map(async (spec) => {
      const dir = join(root, spec.id);
      await mkdir(join(dir, 'sessions'), { recursive: true });
      await writeFile(join(dir, 'health'), 'healthy\n');
      await writeFile(join(dir, 'php.ini'), PHP_INI);
      const socketPath = spec.listen === 'unix' ? join(dir, 'fpm.sock') : undefined;
      const port = spec.listen === 'tcp' ? await freePort() : undefined;
      await writeFile(join(dir, 'php-fpm.conf'), fpmConf(dir, spec.id, socketPath ?? `127.0.0.1:${port}`, spec.children ?? 4));
      let child: ChildProcess | undefined;
      let exited: Promise<void> = Promise.resolve();
      const running = (): boolean => child !== undefined && child.exitCode === null && child.signalCode === null;
      const start = async (): Promise<void> => {
        if (running()) return;
        const out = openSync(join(dir, 'php-fpm.out'), 'a');
        // -F: foreground (our child); -R: may run as root (CI does). detached: its own process group, for kill().
        const c = spawn(bin, ['-F', '-R', '-y', join(dir, 'php-fpm.conf'), '-c', join(dir, 'php.ini')], { stdio: ['ignore', out, out], detached: true });
        closeSync(out);
        c.unref();
        child = c;
        live.add(c);
        exited = new Promise<void>((resolve) => c.once('exit', () => resolve()));
        void exited.then(() => live.delete(c));
        const deadline = Date.now() + 10_000;
        while (Date.now() < deadline) {
          if (!running()) break;
          if (await canConnect(socketPath !== undefined ? { path: socketPath } : { host: '127.0.0.1', port: port as number })) return;
          await new Promise((r) => setTimeout(r, 25));
        }
        throw new Error(`php-fpm ${spec.id} did not start listening within 10 s:\n${readFileSync(join(dir, 'php-fpm.log'), 'utf8').slice(-2000)}`);
      };
      const kill = async (): Promise<void> => {
        if (child?.pid === undefined || !running()) return;
        killGroup(child.pid, 'SIGKILL');
        await exited;
      };
      const b: FpmBackend & { stopNow(): Promise<void> } = {
        id: spec.id,
        dir,
        socketPath,
        port,
        config: (extra = {}) => ({ id: spec.id, protocol: 'fastcgi', ...(socketPath !== undefined ? { socket: socketPath } : { host: '127.0.0.1', port }), ...extra }),
        setHealthy: (ok) => writeFile(join(dir, 'health'), ok ? 'healthy\n' : 'unhealthy\n'),
        kill,
        start,
        get running() {
          return running();
        },
        async stopNow() {
          if (child?.pid === undefined || !running()) return;
          child.kill('SIGTERM');
          const t = setTimeout(() => child?.pid !== undefined && killGroup(child.pid, 'SIGKILL'), 5000);
          await exited;
          clearTimeout(t);
          // Children outlive a master killed outright; none may be left.
          killGroup(child.pid, 'SIGKILL');
        },
      };
      await start();
      return b;
    }),
  );
  return {
    backends,
    dir: root,
    async stop() {
      await Promise.all(backends.map((b) => b.stopNow()));
      await rm(root, { recursive: true, force: true });
    },
  };
}
