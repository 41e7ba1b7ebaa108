// tuning/: the scripts pass shellcheck; their --check modes run as an unprivileged user and change
// nothing; --apply and --persist are exercised on a copy of the sysctl tree (QUICLB_PROC_SYS) and on a
// child process, never on the host; cpu-affinity.sh sees and pins the threads of a real Node process;
// the systemd unit passes `systemd-analyze verify` where that exists.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn, spawnSync } from 'node:child_process';
import { chmod, copyFile, mkdir, mkdtemp, readFile, readdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ROOT } from '../support/quiclb-process.ts';
import { DEFAULTS } from '../../src/config/defaults.ts';
import { parseDuration } from '../../src/config/duration.ts';

const TUNING = path.join(ROOT, 'tuning');
const SCRIPTS = ['sysctl.sh', 'limits.sh', 'cpu-affinity.sh'];
const SYSCTLS: Array<[string, string]> = [
  ['net.core.rmem_max', '7500000'],
  ['net.core.wmem_max', '7500000'],
  ['net.core.rmem_default', '2500000'],
  ['net.core.wmem_default', '2500000'],
  ['net.core.somaxconn', '4096'],
  ['net.core.netdev_max_backlog', '16384'],
  ['net.ipv4.tcp_max_syn_backlog', '8192'],
  ['net.ipv4.ip_local_port_range', '10240 65535'],
  ['fs.file-max', '1048576'],
];
const isRoot = process.getuid?.() === 0;
const has = (cmd: string) => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function run(cmd: string, args: string[], env: Record<string, string> = {}): Promise<Run> {
  return new Promise((resolve) => {
    execFile(cmd, args, { env: { ...process.env, ...env }, timeout: 30_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

/** Runs as uid/gid 65534 (nobody) when the tests run as root, as CI does; as the current user otherwise. */
function asNobody(args: string[], env: Record<string, string> = {}): Promise<Run> {
  if (!isRoot) return run(args[0], args.slice(1), env);
  return run('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', ...args], env);
}

/** A world-readable copy of tuning/, so `nobody` can run it wherever the checkout lives. */
async function tuningCopy(): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), 'quiclb-tuning-'));
  await chmod(dir, 0o755);
  for (const f of await readdir(TUNING)) await copyFile(path.join(TUNING, f), path.join(dir, f));
  for (const f of SCRIPTS) await chmod(path.join(dir, f), 0o755);
  return dir;
}

async function readSysctl(name: string): Promise<string | undefined> {
  try {
    return (await readFile(`/proc/sys/${name.replaceAll('.', '/')}`, 'utf8')).trim().replace(/\s+/g, ' ');
  } catch {
    return undefined;
  }
}

const snapshot = async () => Promise.all(SYSCTLS.map(([name]) => readSysctl(name)));

/** A fake /proc/sys holding `values`. */
async function fakeProcSys(values: Record<string, string>): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), 'quiclb-procsys-'));
  await chmod(dir, 0o755); // readable by nobody
  for (const [name, value] of Object.entries(values)) {
    const file = path.join(dir, ...name.split('.'));
    await mkdir(path.dirname(file), { recursive: true, mode: 0o755 });
    await writeFile(file, `${value.replace(' ', '\t')}\n`, { mode: 0o644 });
  }
  return dir;
}

function settingLine(out: string, name: string): RegExpExecArray | null {
  return new RegExp(`^(OK|LOW|n/a)\\s+${name.replaceAll('.', '\\.')}\\s+(\\S+(?: \\d+)?)\\s+(?:>= )?(\\d+(?: \\d+)?)\\s`, 'm').exec(out);
}

test('every tuning script passes shellcheck', async (t) => {
  if (!has('shellcheck')) return t.skip('shellcheck is not installed (apt-get install shellcheck)');
  for (const script of SCRIPTS) {
    const res = await run('shellcheck', ['--shell=bash', path.join(TUNING, script)]);
    assert.equal(res.code, 0, `${script}:\n${res.stdout}${res.stderr}`);
  }
});

test('sysctl.sh --check runs unprivileged, lists current and recommended values, changes nothing', async () => {
  const dir = await tuningCopy();
  const before = await snapshot();
  const res = await asNobody([path.join(dir, 'sysctl.sh'), '--check']);
  assert.deepEqual(await snapshot(), before);
  let low = 0;
  for (const [i, [name, recommended]] of SYSCTLS.entries()) {
    const m = settingLine(res.stdout, name);
    assert.ok(m, `${name} missing from:\n${res.stdout}`);
    assert.equal(m[3], recommended, name);
    if (before[i] === undefined) {
      assert.equal(m[1], 'n/a', name);
      continue;
    }
    assert.equal(m[2], before[i], `${name}: current value as /proc/sys has it`);
    if (m[1] === 'LOW') low++;
  }
  assert.equal(res.code, low > 0 ? 1 : 0, `${low} LOW lines:\n${res.stdout}${res.stderr}`);
  if (low > 0) assert.match(res.stdout, /--apply/);
});

test('sysctl.sh exits 0 when all is good and 1 when one setting is low (on a copy of the tree)', async () => {
  const dir = await tuningCopy();
  const good = await fakeProcSys(Object.fromEntries(SYSCTLS));
  const ok = await asNobody([path.join(dir, 'sysctl.sh')], { QUICLB_PROC_SYS: good });
  assert.equal(ok.code, 0, ok.stdout);
  for (const [name, value] of SYSCTLS) assert.deepEqual(settingLine(ok.stdout, name)?.slice(1), ['OK', value, value], name);
  assert.match(ok.stdout, /All settings at or above/);
  const lowTree = await fakeProcSys({ ...Object.fromEntries(SYSCTLS), 'net.ipv4.ip_local_port_range': '32768 60999' });
  const low = await asNobody([path.join(dir, 'sysctl.sh'), '--check'], { QUICLB_PROC_SYS: lowTree });
  assert.equal(low.code, 1, low.stdout);
  assert.equal(settingLine(low.stdout, 'net.ipv4.ip_local_port_range')?.[1], 'LOW');
  assert.equal(settingLine(low.stdout, 'net.core.rmem_max')?.[1], 'OK');
});

test('sysctl.sh --apply raises only what is low and never lowers; --persist writes the file', async () => {
  const dir = await tuningCopy();
  const before = await snapshot();
  const tree = await fakeProcSys({
    ...Object.fromEntries(SYSCTLS),
    'net.core.rmem_max': '9000000', // above the recommendation: must stay
    'net.core.wmem_max': '212992',
    'net.core.netdev_max_backlog': '1000',
  });
  const apply = await run(path.join(dir, 'sysctl.sh'), ['--apply'], { QUICLB_PROC_SYS: tree });
  assert.equal(apply.code, 0, apply.stdout + apply.stderr);
  assert.match(apply.stdout, /set {4}net\.core\.wmem_max: 212992 -> 7500000/);
  assert.match(apply.stdout, /sysctl\.sh --persist/);
  assert.equal((await readFile(path.join(tree, 'net/core/wmem_max'), 'utf8')).trim(), '7500000');
  assert.equal((await readFile(path.join(tree, 'net/core/netdev_max_backlog'), 'utf8')).trim(), '16384');
  assert.equal((await readFile(path.join(tree, 'net/core/rmem_max'), 'utf8')).trim(), '9000000');
  const out = path.join(tree, '60-quiclb.conf');
  const persist = await run(path.join(dir, 'sysctl.sh'), ['--persist', '--out', out], { QUICLB_PROC_SYS: tree });
  assert.equal(persist.code, 0, persist.stderr);
  const conf = await readFile(out, 'utf8');
  assert.match(conf, /^net\.core\.rmem_max = 9000000$/m);
  assert.match(conf, /^net\.ipv4\.ip_local_port_range = 10240 65535$/m);
  for (const [name] of SYSCTLS) assert.match(conf, new RegExp(`^${name.replaceAll('.', '\\.')} = `, 'm'));
  assert.deepEqual(await snapshot(), before, 'the host was not touched');
});

test('sysctl.sh --apply on the real kernel refuses without root and changes nothing', async (t) => {
  if (!isRoot) return t.skip('needs root to drop to nobody');
  const dir = await tuningCopy();
  const before = await snapshot();
  const res = await asNobody([path.join(dir, 'sysctl.sh'), '--apply']);
  assert.equal(res.code, 2);
  assert.match(res.stderr, /needs root/);
  assert.deepEqual(await snapshot(), before);
});

function nofileOf(limits: string): [string, string] {
  const m = /^Max open files\s+(\S+)\s+(\S+)/m.exec(limits);
  assert.ok(m, limits);
  return [m[1], m[2]];
}

test('limits.sh --check runs unprivileged and reports the soft/hard nofile it inherits', async () => {
  const dir = await tuningCopy();
  const [soft, hard] = nofileOf(await readFile('/proc/self/limits', 'utf8'));
  const res = await asNobody([path.join(dir, 'limits.sh'), '--check']);
  assert.match(res.stdout, new RegExp(`^\\S+\\s+nofile soft \\(this shell\\)\\s+${soft}\\s+>= 65536`, 'm'));
  assert.match(res.stdout, new RegExp(`^\\S+\\s+nofile hard \\(this shell\\)\\s+${hard}\\s+>= 65536`, 'm'));
  assert.match(res.stdout, /LimitNOFILE=1048576/);
  const enough = (v: string) => v === 'unlimited' || Number(v) >= 65536;
  assert.equal(res.code, enough(soft) && enough(hard) ? 0 : 1, res.stdout);

  // A lowered limit (anyone may lower their own) is reported LOW with exit 1.
  const low = await run('prlimit', ['--nofile=1024:4096', ...(isRoot ? ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups'] : []),
    path.join(dir, 'limits.sh'), '--check']);
  assert.equal(low.code, 1, low.stdout + low.stderr);
  assert.match(low.stdout, /^LOW\s+nofile soft \(this shell\)\s+1024\s/m);
  assert.match(low.stdout, /^LOW\s+nofile hard \(this shell\)\s+4096\s/m);
});

test('limits.sh --apply installs limits.conf where told and raises a running process with --pid', async () => {
  const dir = await tuningCopy();
  const child = spawn('prlimit', ['--nofile=1024:4096', 'sleep', '30'], { stdio: 'ignore' });
  try {
    await new Promise((r) => setTimeout(r, 200));
    const pid = String(child.pid);
    assert.deepEqual(nofileOf(await readFile(`/proc/${pid}/limits`, 'utf8')), ['1024', '4096']);
    const out = path.join(dir, 'installed-limits.conf');
    const res = await run(path.join(dir, 'limits.sh'), ['--apply', '--out', out, '--pid', pid]);
    assert.equal(res.code, 0, res.stdout + res.stderr);
    assert.equal(await readFile(out, 'utf8'), await readFile(path.join(TUNING, 'limits.conf'), 'utf8'));
    const [soft, hard] = nofileOf(await readFile(`/proc/${pid}/limits`, 'utf8'));
    // 1048576 with CAP_SYS_RESOURCE; without it (many containers) the soft limit rises to the hard one.
    assert.ok(Number(soft) >= 4096 && soft === hard, `${soft}:${hard}`);
    const check = await run(path.join(dir, 'limits.sh'), ['--check', '--pid', pid]);
    assert.match(check.stdout, new RegExp(`nofile soft \\(pid ${pid} sleep\\)\\s+${soft}\\s`));
  } finally {
    child.kill();
  }
});

/** "0-2,5" -> [0, 1, 2, 5] */
function expandCpus(list: string): number[] {
  return list.split(',').flatMap((part) => {
    const [lo, hi = lo] = part.split('-').map(Number);
    return Array.from({ length: hi - lo + 1 }, (_, i) => lo + i);
  });
}

async function threads(pid: number): Promise<Map<string, { comm: string; cpus: string }>> {
  const out = new Map<string, { comm: string; cpus: string }>();
  for (const tid of await readdir(`/proc/${pid}/task`)) {
    try {
      const comm = (await readFile(`/proc/${pid}/task/${tid}/comm`, 'utf8')).trim();
      const cpus = /^Cpus_allowed_list:\s*(\S+)/m.exec(await readFile(`/proc/${pid}/task/${tid}/status`, 'utf8'))?.[1] ?? '';
      out.set(tid, { comm, cpus });
    } catch {
      // thread exited between listing and reading
    }
  }
  return out;
}

test('cpu-affinity.sh --check lists every thread of a process; --cores --spread pins shards apart', async () => {
  const dir = await tuningCopy();
  // A stand-in for quiclb: a Node process with worker threads named like its shards.
  const code = `const { Worker } = require('node:worker_threads');
    let online = 0;
    for (let i = 0; i < 2; i++) new Worker('setInterval(() => {}, 1000)', { eval: true, name: 'quiclb-shard-' + i })
      .on('online', () => { if (++online === 2) console.log('ready'); });
    setTimeout(() => process.exit(0), 25000);`;
  const child = spawn(process.execPath, ['-e', code], { stdio: ['ignore', 'pipe', 'inherit'] });
  try {
    await new Promise<void>((resolve) => child.stdout.on('data', (d: Buffer) => d.toString().includes('ready') && resolve()));
    const pid = child.pid as number;
    const res = await run(path.join(dir, 'cpu-affinity.sh'), ['--check', '--pid', String(pid)]);
    assert.equal(res.code, 0, res.stderr);
    const seen = await threads(pid);
    assert.ok([...seen.values()].some((t) => t.comm === 'quiclb-shard-1'));
    for (const [tid, t] of seen) assert.match(res.stdout, new RegExp(`^${tid}\\s+${t.comm}\\s+${t.cpus}$`, 'm'));

    const allowed = seen.get(String(pid))?.cpus ?? '';
    const cores = expandCpus(allowed);
    const pin = await run(path.join(dir, 'cpu-affinity.sh'), ['--pid', String(pid), '--cores', allowed, '--spread']);
    assert.equal(pin.code, 0, pin.stdout + pin.stderr);
    const after = await threads(pid);
    for (const t of after.values()) {
      const m = /^quiclb-shard-(\d+)$/.exec(t.comm);
      if (m) assert.equal(t.cpus, String(cores[Number(m[1]) % cores.length]), t.comm);
      else assert.deepEqual(expandCpus(t.cpus), cores, t.comm);
    }
    const bad = await run(path.join(dir, 'cpu-affinity.sh'), ['--pid', String(pid), '--cores', 'two']);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--cores: expected a list/);
  } finally {
    child.kill();
  }
});

test('quiclb.service is hardened and passes systemd-analyze verify', async (t) => {
  const unit = await readFile(path.join(TUNING, 'quiclb.service'), 'utf8');
  const directive = (key: string) => new RegExp(`^${key}=(.*)$`, 'm').exec(unit)?.[1];
  assert.equal(directive('User'), 'quiclb');
  assert.equal(directive('LimitNOFILE'), '1048576');
  assert.equal(directive('Restart'), 'on-failure');
  assert.equal(directive('AmbientCapabilities'), 'CAP_NET_BIND_SERVICE');
  assert.equal(directive('CapabilityBoundingSet'), 'CAP_NET_BIND_SERVICE');
  assert.equal(directive('NoNewPrivileges'), 'yes');
  assert.equal(directive('ProtectSystem'), 'strict');
  assert.equal(directive('StateDirectory'), 'quiclb');
  assert.equal(directive('KillSignal'), 'SIGTERM');
  // systemctl reload: SIGHUP re-reads the configuration (README "Reload").
  assert.equal(directive('ExecReload'), '/bin/kill -HUP $MAINPID');
  assert.match(directive('ExecStart') ?? '', /node_modules\/\.bin\/node \/opt\/quiclb\/bin\/quiclb\.js start --config \/etc\/quiclb\/config\.json$/);
  const stopMs = parseDuration((directive('TimeoutStopSec') ?? '').replace(/sec$/, 's'));
  assert.ok(stopMs > parseDuration(DEFAULTS.server.shutdownTimeout), 'systemd waits longer than the drain');

  if (!has('systemd-analyze')) return t.skip('systemd-analyze is not installed');
  // verify checks that ExecStart exists, so point the copy at this checkout instead of /opt/quiclb.
  const dir = await mkdtemp(path.join(tmpdir(), 'quiclb-unit-'));
  const copy = path.join(dir, 'quiclb.service');
  await writeFile(copy, unit.replaceAll('/opt/quiclb', ROOT));
  const res = await run('systemd-analyze', ['verify', copy]);
  const ours = `${res.stdout}${res.stderr}`.split('\n').filter((l) => l.includes('quiclb.service'));
  assert.equal(res.code, 0, res.stdout + res.stderr);
  assert.deepEqual(ours, [], 'no warning about the unit');
});
