// The host checks behind `quiclb doctor`. Each returns one or more results; none changes the host
// (sockets it opens are closed again, nothing is written). Fixes point at the scripts in tuning/.
import dgram from 'node:dgram';
import net from 'node:net';
import path from 'node:path';
import { readFileSync, readdirSync, readlinkSync, accessSync, constants as fsConstants } from 'node:fs';
import { X509Certificate } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import type { Config } from '../config/types.ts';
import { checkUdpBuffers } from '../shared/udp-buffers.ts';
import { loadTlsMaterial, CERT_WARN_DAYS } from '../shared/tls-material.ts';
import { defaultKeyRingFile, readKeyRing } from '../shared/key-ring.ts';
import { bindAddressList, isIpv6Any, resolveBinds, type BindSpec } from '../primary/bind-plan.ts';
import { prepareQuicheBinding, type PrepareOptions } from '../quic/quiche-binding-file.ts';
import { fastCgiTarget } from '../fastcgi/from-config.ts';
import { describeTarget, openConnection } from '../fastcgi/connection.ts';

export type CheckStatus = 'OK' | 'WARN' | 'FAIL';

export interface CheckResult {
  status: CheckStatus;
  name: string;
  detail: string;
  /** What to run or change; printed after "— fix:". */
  fix?: string;
}

/** Below this soft nofile limit quiclb runs out of descriptors at a few tens of thousands of connections. */
export const MIN_NOFILE = 65536;
/** The backlog src/primary/tcp-listeners.ts asks for; the kernel silently truncates it to somaxconn. */
export const LISTEN_BACKLOG = 4096;
const DAY_MS = 86_400_000;

const TUNING_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../tuning');

/** Path of a tuning/ script as the user should type it: relative when under the current directory. */
export function tuning(file: string): string {
  const abs = path.join(TUNING_DIR, file);
  const rel = path.relative(process.cwd(), abs);
  return rel.startsWith('..') || path.isAbsolute(rel) ? abs : rel;
}

function readSysctl(name: string): string | undefined {
  try {
    return readFileSync(`/proc/sys/${name.replaceAll('.', '/')}`, 'utf8').trim();
  } catch {
    return undefined;
  }
}

// ---- UDP buffers ---------------------------------------------------------------------------------

export async function checkUdpBufferSizes(config: Config): Promise<CheckResult> {
  const name = 'udp-buffers';
  if (!config.quic.enabled) return { status: 'OK', name, detail: 'QUIC disabled (quic.enabled false); not needed' };
  const wanted = config.quic.udpBufferSize;
  // A throwaway socket on an ephemeral loopback port: the cap is host-wide, and the configured port may be busy.
  const socket = dgram.createSocket('udp4');
  const bindError = await new Promise<Error | undefined>((resolve) => {
    socket.once('error', resolve);
    socket.bind(0, '127.0.0.1', () => resolve(undefined));
  });
  if (bindError) {
    socket.close();
    return { status: 'WARN', name, detail: `cannot open a UDP socket on 127.0.0.1 to measure: ${bindError.message}`, fix: `${tuning('sysctl.sh')} --check` };
  }
  try {
    const r = checkUdpBuffers(socket, wanted);
    const caps = `net.core.rmem_max=${readSysctl('net.core.rmem_max') ?? '?'}, net.core.wmem_max=${readSysctl('net.core.wmem_max') ?? '?'}`;
    const got = `kernel granted receive ${r.rcv} / send ${r.snd} bytes for the ${wanted} asked (quic.udpBufferSize); ${caps}`;
    if (r.ok) return { status: 'OK', name, detail: got };
    const fix =
      wanted <= 7_500_000
        ? `sudo ${tuning('sysctl.sh')} --apply (then --persist)`
        : `sudo sysctl -w net.core.rmem_max=${wanted} net.core.wmem_max=${wanted} (and persist it as ${tuning('sysctl.sh')} --persist does)`;
    return { status: 'WARN', name, detail: `${got}; bursts above that are dropped by the kernel`, fix };
  } finally {
    socket.close();
  }
}

// ---- file descriptors ----------------------------------------------------------------------------

/** Soft and hard "Max open files" of this process, from /proc/self/limits. */
export function readNofile(limitsText: string): { soft: number; hard: number } | undefined {
  const m = /^Max open files\s+(\d+|unlimited)\s+(\d+|unlimited)/m.exec(limitsText);
  if (!m) return undefined;
  const num = (s: string) => (s === 'unlimited' ? Number.POSITIVE_INFINITY : Number(s));
  return { soft: num(m[1]), hard: num(m[2]) };
}

export function checkNofile(): CheckResult {
  const name = 'nofile';
  let limits;
  try {
    limits = readNofile(readFileSync('/proc/self/limits', 'utf8'));
  } catch {
    limits = undefined;
  }
  if (!limits) return { status: 'WARN', name, detail: 'cannot read /proc/self/limits', fix: `${tuning('limits.sh')} --check` };
  const detail = `open files soft ${limits.soft}, hard ${limits.hard} (every client and backend connection uses one)`;
  if (limits.soft >= MIN_NOFILE) return { status: 'OK', name, detail };
  const shell = limits.hard >= MIN_NOFILE ? `ulimit -n ${MIN_NOFILE} in this shell` : `sudo ${tuning('limits.sh')} --apply and log in again`;
  return {
    status: 'WARN',
    name,
    detail: `${detail}; below ${MIN_NOFILE}`,
    fix: `${shell}; under systemd LimitNOFILE=1048576 as in ${tuning('quiclb.service')}`,
  };
}

export function checkListenBacklog(): CheckResult {
  const name = 'listen-backlog';
  const raw = readSysctl('net.core.somaxconn');
  if (raw === undefined) return { status: 'OK', name, detail: 'net.core.somaxconn not readable here; skipped' };
  const somaxconn = Number(raw);
  const detail = `net.core.somaxconn=${somaxconn}; quiclb listens with a backlog of ${LISTEN_BACKLOG}`;
  if (somaxconn >= LISTEN_BACKLOG) return { status: 'OK', name, detail };
  return { status: 'WARN', name, detail: `${detail}, which the kernel truncates`, fix: `sudo ${tuning('sysctl.sh')} --apply` };
}

/** Whether every shard can serve HTTP/3: the thread-safe copy of the quiche binding exists or can be written. */
export function checkQuicheBinding(config: Config, files: Omit<PrepareOptions, 'dryRun'> = {}): CheckResult {
  const name = 'quiche-binding';
  if (!config.quic.enabled) return { status: 'OK', name, detail: 'quic.enabled is false; skipped' };
  const b = prepareQuicheBinding({ ...files, dryRun: true });
  if (b.threadSafe) return { status: 'OK', name, detail: `thread-safe copy: ${b.detail}; HTTP/3 on every shard` };
  return {
    status: 'WARN',
    name,
    detail: `${b.detail}; HTTP/3 would run on shard 0 only`,
    fix: 'run `npm install` (or `npm ci`) as the owner of node_modules with @matrixai/quic-linux-x64 2.0.9 as pinned in package.json',
  };
}

// ---- ports ---------------------------------------------------------------------------------------

export interface PortSpec {
  port: number;
  proto: 'tcp' | 'udp';
  field: string;
}

/** Every socket `quiclb start` binds, as the primary does (src/primary/primary.ts). */
export function configuredPorts(config: Config): PortSpec[] {
  const specs: PortSpec[] = [
    { port: config.server.httpPort, proto: 'tcp', field: 'server.httpPort' },
    { port: config.server.httpsPort, proto: 'tcp', field: 'server.httpsPort' },
  ];
  if (config.quic.enabled) specs.push({ port: config.server.httpsPort, proto: 'udp', field: 'server.httpsPort (QUIC)' });
  if (config.admin.port > 0) specs.push({ port: config.admin.port, proto: 'tcp', field: 'admin.port' });
  const seen = new Set<string>();
  return specs.filter((s) => {
    const key = `${s.port}/${s.proto}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

/** Binds and closes the port as quiclb would (same address, same dual-stack mode); undefined when free, else the errno code. */
export function probeBind(bind: BindSpec, spec: PortSpec): Promise<string | undefined> {
  const host = bind.host;
  return new Promise((resolve) => {
    const done = (err?: NodeJS.ErrnoException) => resolve(err ? (err.code ?? err.message) : undefined);
    if (spec.proto === 'tcp') {
      const server = net.createServer();
      server.once('error', done);
      server.listen({ host, port: spec.port, exclusive: true, ipv6Only: bind.ipv6Only }, () => server.close(() => done()));
    } else {
      const socket = dgram.createSocket({ type: bind.family === 6 ? 'udp6' : 'udp4', ipv6Only: bind.ipv6Only });
      socket.once('error', (err) => {
        socket.close();
        done(err);
      });
      socket.bind({ address: host, port: spec.port, exclusive: true }, () => socket.close(() => done()));
    }
  });
}

/** Socket inodes bound to `port` (TCP: listening only), from /proc/net/{tcp,tcp6,udp,udp6}. */
function socketInodes(port: number, proto: 'tcp' | 'udp'): Set<string> {
  const inodes = new Set<string>();
  const hexPort = port.toString(16).toUpperCase().padStart(4, '0');
  for (const file of [`/proc/net/${proto}`, `/proc/net/${proto}6`]) {
    let text;
    try {
      text = readFileSync(file, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f.length < 10 || !f[1].endsWith(`:${hexPort}`)) continue;
      if (proto === 'tcp' && f[3] !== '0A') continue; // 0A = TCP_LISTEN
      if (f[9] !== '0') inodes.add(f[9]);
    }
  }
  return inodes;
}

/** "pid 123 (nginx)" for processes holding the port, as far as this user may look into /proc. */
export function portOwners(port: number, proto: 'tcp' | 'udp', max = 3): string[] {
  const inodes = socketInodes(port, proto);
  if (inodes.size === 0) return [];
  const owners: string[] = [];
  let pids: string[];
  try {
    pids = readdirSync('/proc').filter((d) => /^\d+$/.test(d));
  } catch {
    return [];
  }
  for (const pid of pids) {
    let fds: string[];
    try {
      fds = readdirSync(`/proc/${pid}/fd`);
    } catch {
      continue; // another user's process, or gone
    }
    const holds = fds.some((fd) => {
      try {
        const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
        return m !== null && inodes.has(m[1]);
      } catch {
        return false;
      }
    });
    if (!holds) continue;
    let comm = '?';
    try {
      comm = readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
    } catch {
      // exited meanwhile
    }
    owners.push(`pid ${pid} (${comm})`);
    if (owners.length >= max) break;
  }
  return owners;
}

export async function checkPorts(config: Config): Promise<CheckResult[]> {
  // The sockets `quiclb start` binds: "::" dual stack (or 0.0.0.0 on a host without IPv6), or each listed address.
  const binds = await resolveBinds(bindAddressList(config.server));
  const results: CheckResult[] = [];
  for (const bind of binds) {
    const host = bind.host;
    for (const spec of configuredPorts(config)) {
      const name = binds.length > 1 ? `port ${spec.port}/${spec.proto} on ${host}` : `port ${spec.port}/${spec.proto}`;
      const code = await probeBind(bind, spec);
      const where = `${spec.field} on ${host}${isIpv6Any(host) && !bind.ipv6Only ? ' (dual stack: IPv6 and IPv4)' : ''}`;
      if (code === undefined) {
        results.push({ status: 'OK', name, detail: `${where} is free to bind` });
      } else if (code === 'EADDRINUSE') {
        const owners = portOwners(spec.port, spec.proto);
        const by = owners.length > 0 ? ` by ${owners.join(', ')}` : '';
        const look = spec.proto === 'tcp' ? `ss -ltnp 'sport = :${spec.port}'` : `ss -lunp 'sport = :${spec.port}'`;
        results.push({
          status: 'FAIL',
          name,
          detail: `port ${spec.port}/${spec.proto} is in use${by} (${where}); quiclb start would fail (a running quiclb holds its own ports too)`,
          fix: `stop what holds it (${look}) or change ${spec.field.replace(/ \(QUIC\)$/, '')}`,
        });
      } else if (code === 'EACCES') {
        results.push({
          status: 'FAIL',
          name,
          detail: `binding port ${spec.port}/${spec.proto} needs CAP_NET_BIND_SERVICE (${where})`,
          fix: `run under ${tuning('quiclb.service')} (AmbientCapabilities=CAP_NET_BIND_SERVICE) or pick a port >= 1024`,
        });
      } else if (code === 'EADDRNOTAVAIL') {
        results.push({
          status: 'FAIL',
          name,
          detail: `server.bindAddress ${host} is not an address of this host`,
          fix: 'set server.bindAddress to addresses of `ip -brief address`, or "::" (all, IPv6 and IPv4)',
        });
      } else {
        results.push({ status: 'FAIL', name, detail: `cannot bind ${where}: ${code}`, fix: `check ${spec.field} and server.bindAddress` });
      }
    }
  }
  return results;
}

// ---- certificate ---------------------------------------------------------------------------------

function certCheckOfFile(cert: X509Certificate, certFile: string, now: number): CheckResult {
  const name = 'certificate';
  const renew = `renew it (e.g. certbot renew) and point tls.certFile / tls.keyFile at the new files`;
  const subject = cert.subject.replaceAll('\n', ', ');
  const from = new Date(cert.validFrom);
  const to = new Date(cert.validTo);
  const days = Math.floor((to.getTime() - now) / DAY_MS);
  if (to.getTime() <= now) {
    return { status: 'FAIL', name, detail: `certificate ${certFile} (${subject}) expired on ${to.toISOString()}, ${Math.floor((now - to.getTime()) / DAY_MS)} day(s) ago`, fix: renew };
  }
  if (from.getTime() > now) {
    return { status: 'FAIL', name, detail: `certificate ${certFile} (${subject}) is not valid before ${from.toISOString()}`, fix: 'check the host clock (timedatectl) or the certificate' };
  }
  if (days < CERT_WARN_DAYS) {
    return { status: 'WARN', name, detail: `certificate ${certFile} (${subject}) expires on ${to.toISOString()}, in ${days} day(s)`, fix: renew };
  }
  return { status: 'OK', name, detail: `certificate ${certFile} (${subject}) valid until ${to.toISOString()} (${days} days)` };
}

/**
 * The same parse `quiclb start` runs before it listens (src/shared/tls-material.ts): the whole PEM chain, the
 * key, and that the key belongs to the leaf. A file start would refuse is a FAIL naming its field.
 */
function certificatePair(certFile: string, keyFile: string, now: number): { results: CheckResult[]; leaf?: X509Certificate } {
  let material;
  try {
    material = loadTlsMaterial(certFile, keyFile);
  } catch (err) {
    const e = err as { code?: string; field?: string; detail?: string };
    if (e.code !== 'QUICLB_TLS') throw err;
    if (e.field === 'tls.certFile') {
      return { results: [{ status: 'FAIL', name: 'certificate', detail: `tls.certFile: ${e.detail}`, fix: 'point tls.certFile at a readable PEM certificate chain (leaf first)' }] };
    }
    // The certificate parsed: still report its dates.
    const leaf = new X509Certificate(readFileSync(certFile));
    const keyFail: CheckResult = { status: 'FAIL', name: 'certificate-key', detail: `tls.keyFile: ${e.detail}`, fix: 'point tls.keyFile at the readable, unencrypted PEM key the certificate was issued for' };
    return { results: [certCheckOfFile(leaf, certFile, now), keyFail], leaf };
  }
  const results = [certCheckOfFile(material.chain[0], certFile, now)];
  for (const w of material.warnings) results.push({ status: 'WARN', name: 'certificate-chain', detail: w, fix: 'reorder the PEM file: leaf, then each issuer' });
  results.push({ status: 'OK', name: 'certificate-key', detail: `tls.keyFile ${keyFile} matches the certificate` });
  return { results, leaf: material.chain[0] };
}

function hostCheck(cert: X509Certificate, wwwRoot: string): CheckResult | undefined {
  let host: string;
  try {
    host = new URL(wwwRoot).hostname;
  } catch {
    return undefined;
  }
  const name = 'certificate-host';
  const ok = net.isIP(host.replace(/^\[|\]$/g, '')) ? cert.checkIP(host.replace(/^\[|\]$/g, '')) : cert.checkHost(host);
  if (ok) return { status: 'OK', name, detail: `certificate covers ${host} (moodle.wwwRoot)` };
  return { status: 'WARN', name, detail: `certificate does not cover ${host} (moodle.wwwRoot); browsers will refuse it`, fix: 'get a certificate whose subjectAltName names that host' };
}

/** Whether `dir`, or its nearest existing ancestor when it does not exist yet, is writable. */
function canCreateIn(dir: string): boolean {
  let probe = dir;
  for (;;) {
    try {
      accessSync(probe, fsConstants.F_OK);
      break;
    } catch {
      const up = path.dirname(probe);
      if (up === probe) break;
      probe = up;
    }
  }
  try {
    accessSync(probe, fsConstants.W_OK);
    return true;
  } catch {
    return false;
  }
}

// ---- key ring ------------------------------------------------------------------------------------

/** The key ring `quiclb start` opens (src/shared/key-ring.ts): readable, private and well formed, or creatable. */
export function checkKeyRing(config: Config): CheckResult {
  const name = 'key-ring';
  const file = path.resolve(config.tls.keyRing ?? defaultKeyRingFile(config.tls.stateDir));
  let ring;
  try {
    ring = readKeyRing(file);
  } catch (err) {
    return { status: 'FAIL', name, detail: `tls.keyRing: ${(err as Error).message}`, fix: 'fix or remove the file (a new one is created at start; Retry tokens and session tickets issued under the old one stop working)' };
  }
  if (ring) return { status: 'OK', name, detail: `${file} holds ${ring.keys.length} key(s), readable by its owner only` };
  if (canCreateIn(path.dirname(file))) return { status: 'OK', name, detail: `${file} does not exist yet; quiclb start creates it (mode 0600)` };
  return {
    status: 'FAIL',
    name,
    detail: `tls.keyRing ${file} does not exist and its directory is not writable`,
    fix: 'create the directory for the quiclb user (StateDirectory=quiclb in tuning/quiclb.service) or point tls.keyRing elsewhere',
  };
}

export function checkCertificate(config: Config, now = Date.now()): CheckResult[] {
  const { certFile, keyFile, stateDir } = config.tls;
  if (certFile === undefined || keyFile === undefined) {
    const results: CheckResult[] = [
      {
        status: 'WARN',
        name: 'certificate',
        detail: `tls.certFile is not set: a self-signed certificate will be generated in ${path.resolve(stateDir)} (browsers will not trust it)`,
        fix: 'set tls.certFile and tls.keyFile (or SSL_CERT_PATH / SSL_KEY_PATH)',
      },
    ];
    const dir = path.resolve(stateDir);
    if (!canCreateIn(dir)) {
      results.push({ status: 'FAIL', name: 'state-dir', detail: `tls.stateDir ${dir} is not writable`, fix: 'create it for the quiclb user (StateDirectory=quiclb in tuning/quiclb.service)' });
    }
    return results;
  }
  const { results, leaf } = certificatePair(certFile, keyFile, now);
  if (leaf && config.moodle.wwwRoot) {
    const host = hostCheck(leaf, config.moodle.wwwRoot);
    if (host) results.push(host);
  }
  return results;
}

// ---- php-fpm (FastCGI backends) ------------------------------------------------------------------

/**
 * Every FastCGI backend's php-fpm accepts a connection (unix socket or TCP), as quiclb would open it; nothing is
 * sent. A socket quiclb cannot open (missing, refused, no permission) is a FAIL with what to change.
 */
export async function checkFastCgiBackends(config: Config, timeoutMs = 2000): Promise<CheckResult[]> {
  const results: CheckResult[] = [];
  for (const b of config.loadBalancer.backendServers) {
    if (b.protocol !== 'fastcgi') continue;
    const target = fastCgiTarget(b);
    const name = `php-fpm ${b.id}`;
    try {
      const conn = await openConnection(target, timeoutMs);
      conn.socket.destroy();
      results.push({ status: 'OK', name, detail: `${describeTarget(target)} accepts connections` });
    } catch (err) {
      const e = err as Error & { code?: string };
      const fix =
        e.code === 'EACCES'
          ? "let quiclb's user connect: php-fpm's listen.owner / listen.group / listen.mode (e.g. listen.mode = 0660 and quiclb in listen.group)"
          : `start php-fpm (systemctl start php8.2-fpm) or point ${b.socket !== undefined ? 'socket' : 'host/port'} of backend ${b.id} (or moodle.phpFpmSocket) at its listen address`;
      results.push({ status: 'FAIL', name, detail: e.message, fix });
    }
  }
  return results;
}
