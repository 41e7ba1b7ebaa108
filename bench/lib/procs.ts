// Child processes the bench starts (backends, peers, quiclb): spawned with output to a log file, tracked so
// they are all stopped on exit (also on Ctrl-C), and measured from /proc (utime + stime of the process and of
// every descendant: nginx and HAProxy work in child processes, quiclb in threads of one process).
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, openSync, closeSync, readFileSync, readdirSync } from 'node:fs';
import { createServer, connect } from 'node:net';
import dgram from 'node:dgram';
import { delimiter, join } from 'node:path';

export class BenchError extends Error {
  readonly code: string;
  constructor(code: string, message: string) {
    super(message);
    this.name = 'BenchError';
    this.code = code;
  }
}

export interface Managed {
  readonly name: string;
  readonly child: ChildProcess;
  readonly logFile: string;
  readonly exited: Promise<void>;
  stop(): Promise<void>;
}

const live = new Set<Managed>();
let hooked = false;

function hookExit(): void {
  if (hooked) return;
  hooked = true;
  process.once('exit', () => {
    for (const m of live) {
      try {
        m.child.kill('SIGTERM');
      } catch {
        // gone already
      }
    }
  });
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.once(sig, () => {
      for (const m of live) m.child.kill('SIGTERM');
      process.exit(130);
    });
  }
}

/** Finds a binary in /usr/sbin, /usr/bin or PATH; undefined when absent. */
export function findBin(name: string): string | undefined {
  for (const dir of ['/usr/sbin', '/usr/bin', ...(process.env.PATH ?? '').split(delimiter)]) {
    if (dir !== '' && existsSync(join(dir, name))) return join(dir, name);
  }
  return undefined;
}

export function startProcess(
  name: string,
  bin: string,
  args: string[],
  logFile: string,
  env: Record<string, string> = {},
): Managed {
  hookExit();
  const fd = openSync(logFile, 'a');
  const child = spawn(bin, args, { stdio: ['ignore', fd, fd], env: { ...process.env, ...env } });
  closeSync(fd);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const m: Managed = {
    name,
    child,
    logFile,
    exited,
    async stop() {
      live.delete(m);
      if (child.exitCode !== null || child.signalCode !== null) return;
      // SIGTERM first: a master killed outright would leave its workers behind.
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
    },
  };
  live.add(m);
  child.once('error', () => live.delete(m));
  void exited.then(() => live.delete(m));
  return m;
}

export function logTail(file: string, lines = 15): string {
  try {
    return readFileSync(file, 'utf8').split('\n').slice(-lines).join('\n');
  } catch {
    return '';
  }
}

const handedOut = new Set<number>();

/**
 * A port free for both TCP and UDP on 127.0.0.1 (HTTPS and HTTP/3 share the number). The kernel may hand the
 * same ephemeral port to two listen(0) calls made one after the other (seen: a test quiclb refused to start
 * with httpPort === httpsPort), so one process never gets the same port twice.
 */
export async function freePort(): Promise<number> {
  for (;;) {
    const port = await new Promise<number>((resolve, reject) => {
      const srv = createServer();
      srv.once('error', reject);
      srv.listen(0, '127.0.0.1', () => {
        const p = (srv.address() as { port: number }).port;
        srv.close(() => resolve(p));
      });
    });
    if (handedOut.has(port)) continue;
    const udpFree = await new Promise<boolean>((resolve) => {
      const s = dgram.createSocket('udp4');
      s.once('error', () => resolve(false));
      s.bind(port, '127.0.0.1', () => s.close(() => resolve(true)));
    });
    if (!udpFree) continue;
    handedOut.add(port);
    return port;
  }
}

function tcpOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host: '127.0.0.1', port });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

/** Waits until every port accepts TCP connections; fails early if the process exits. */
export async function waitPorts(m: Managed, ports: number[], timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (const port of ports) {
    while (!(await tcpOpen(port))) {
      if (m.child.exitCode !== null || m.child.signalCode !== null) {
        throw new BenchError('BENCH_START', `${m.name} exited while starting:\n${logTail(m.logFile)}`);
      }
      if (Date.now() > deadline) throw new BenchError('BENCH_START', `${m.name} did not listen on ${port}:\n${logTail(m.logFile)}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

// ---------------------------------------------------------------------------------------------------
// CPU time from /proc (proc(5): fields 14 utime and 15 stime, in clock ticks; 100 per second on Linux).

const CLK_TCK = 100;

function statFields(pid: number): string[] | undefined {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may hold spaces: split after its closing parenthesis.
    return s.slice(s.lastIndexOf(')') + 2).split(' ');
  } catch {
    return undefined;
  }
}

/** pid and all its descendants (scanning /proc once). */
export function processTree(root: number): number[] {
  const children = new Map<number, number[]>();
  for (const name of readdirSync('/proc')) {
    const pid = Number(name);
    if (!Number.isInteger(pid)) continue;
    const f = statFields(pid);
    if (f === undefined) continue;
    const ppid = Number(f[1]);
    const list = children.get(ppid);
    if (list) list.push(pid);
    else children.set(ppid, [pid]);
  }
  const out: number[] = [];
  const todo = [root];
  while (todo.length > 0) {
    const p = todo.pop()!;
    out.push(p);
    todo.push(...(children.get(p) ?? []));
  }
  return out;
}

/** CPU seconds (user + system) used so far by these pids. */
export function cpuSeconds(pids: number[]): number {
  let ticks = 0;
  for (const pid of pids) {
    const f = statFields(pid);
    // After the ")" split, utime/stime (fields 14/15) sit at indexes 11/12.
    if (f !== undefined) ticks += Number(f[11]) + Number(f[12]);
  }
  return ticks / CLK_TCK;
}

/** CPU seconds (user + system) of one thread: /proc/PID/task/TID/stat. The main thread's TID is the PID. */
export function threadCpuSeconds(pid: number, tid = pid): number {
  try {
    const s = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
    const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) / CLK_TCK;
  } catch {
    return 0;
  }
}

/**
 * Resident set size in bytes of these pids: VmRSS from /proc/PID/status. Threads share their process's, so
 * quiclb (one process, shards are threads) is one number; for nginx and HAProxy the workers are summed, which
 * counts pages they share (code, shared memory) once per process: an upper bound.
 */
export function rssBytes(pids: number[]): number {
  let kb = 0;
  for (const pid of pids) {
    try {
      const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
      if (m) kb += Number(m[1]);
    } catch {
      // exited
    }
  }
  return kb * 1024;
}

/**
 * Raises RLIMIT_NOFILE of this process (and so of every child it starts after) towards `want` with prlimit(1):
 * Node has no setrlimit. The soft limit may go up to the hard one; the hard one only with CAP_SYS_RESOURCE.
 * Returns the soft limit now in force and a sentence for the report that says what was done.
 */
export function raiseNofile(want: number): { soft: number; note: string } {
  if (findBin('prlimit') === undefined) return { soft: 0, note: 'prlimit(1) not found: RLIMIT_NOFILE left as it was' };
  const pid = String(process.pid);
  const read = (): [number, number] => {
    const r = spawnSync('prlimit', ['--pid', pid, '--nofile', '--output', 'SOFT,HARD', '--noheadings'], { encoding: 'utf8' });
    const [soft, hard] = (r.stdout ?? '').trim().split(/\s+/).map((x) => (x === 'unlimited' ? Infinity : Number(x)));
    return [soft || 0, hard || 0];
  };
  const set = (soft: number, hard: number): boolean =>
    spawnSync('prlimit', ['--pid', pid, `--nofile=${soft}:${hard === Infinity ? 'unlimited' : hard}`]).status === 0;
  const [soft0, hard0] = read();
  if (soft0 >= want) return { soft: soft0, note: `RLIMIT_NOFILE is ${soft0} (>= ${want} needed): left as it was` };
  let how = `prlimit --pid <bench> --nofile=${want}:${Math.max(want, hard0)}`;
  if (!set(want, Math.max(want, hard0))) {
    // No CAP_SYS_RESOURCE: the soft limit can still go up to the hard one.
    how = `prlimit --pid <bench> --nofile=${hard0}:${hard0} (the hard limit ${hard0} could not be raised: no CAP_SYS_RESOURCE)`;
    set(hard0, hard0);
  }
  const [soft1] = read();
  return { soft: soft1, note: `RLIMIT_NOFILE of the bench (inherited by quiclb, which it starts) raised from ${soft0} to ${soft1} with ${how}` };
}
