// What a load runs against: the backends directly (the baseline), quiclb, or a peer balancer (nginx, HAProxy,
// Caddy) over the same two backends with the same number of workers. Each peer's config is generated into the
// run's temp dir; every process is stopped by stop() (and on exit, see procs.ts).
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { startQuiclb } from '../../test/support/quiclb-process.ts';
import type { Backend } from './backends.ts';
import { nginxCommon, nginxHttpCommon } from './backends.ts';
import { BenchError, findBin, freePort, processTree, startProcess, waitPorts, type Managed } from './procs.ts';

export type Protocol = 'h1' | 'h1tls' | 'h2' | 'h3';
export const PROTOCOLS: readonly Protocol[] = ['h1', 'h1tls', 'h2', 'h3'];

/** One place a load is sent: a host:port and the protocol to speak there. */
export interface Endpoint {
  port: number;
  protocol: Protocol;
}

export interface Target {
  /** 'direct' (baseline), 'quiclb', 'node15', 'nginx', 'haproxy', 'caddy'. */
  name: string;
  /** Endpoints for a protocol; several for the baseline (one per backend, connections spread over them). */
  endpoints(protocol: Protocol): Endpoint[] | undefined;
  /** Every pid whose CPU time counts for this target. */
  pids(): number[];
  /** quiclb only: the pid whose main thread is the primary (it accepts TCP and routes datagrams). */
  primaryPid?: number;
  stop(): Promise<void>;
}

export interface PeerEnv {
  dir: string;
  backends: Backend[];
  certFile: string;
  keyFile: string;
  workers: number;
  /** Extra environment for quiclb (NODE_OPTIONS=--cpu-prof ... with --profile). */
  quiclbEnv?: Record<string, string>;
}

/** The baseline: HTTP/1.1 straight to the backends (plain, or over TLS for the TLS protocols). */
export function directTarget(backends: Backend[], proc: Managed): Target {
  return {
    name: 'direct',
    endpoints(protocol) {
      const tls = protocol !== 'h1';
      return backends.map((b) => ({ port: tls ? b.tlsPort : b.port, protocol: tls ? 'h1tls' : 'h1' }));
    },
    pids: () => processTree(proc.child.pid!),
    stop: () => proc.stop(),
  };
}

/** Which protocol the baseline speaks for a scenario protocol: the backends speak HTTP/1.1 only. */
export function baselineProtocol(p: Protocol): Protocol {
  return p === 'h1' ? 'h1' : 'h1tls';
}

function standardEndpoints(plain: number, tls: number, h3: boolean): Target['endpoints'] {
  return (protocol) => {
    if (protocol === 'h1') return [{ port: plain, protocol }];
    if (protocol === 'h3') return h3 ? [{ port: tls, protocol }] : undefined;
    return [{ port: tls, protocol }];
  };
}

export interface QuiclbTargetOptions {
  h3: boolean;
  /** Client idle timeout for TCP (server.idleTimeout) and QUIC (quic.idleTimeout); default 120 s. */
  idleTimeout?: string;
  /** The response cache on (cache.enabled, default settings; the store in the run's temp dir): target 'quiclb+cache'. */
  cache?: boolean;
}

export async function startQuiclbTarget(env: PeerEnv, opts: QuiclbTargetOptions): Promise<Target> {
  const { h3 } = opts;
  const idleTimeout = opts.idleTimeout ?? '120s';
  const q = await startQuiclb({
    workers: env.workers,
    env: env.quiclbEnv,
    config: {
      server: { idleTimeout, maxBodySize: 0 },
      tls: { certFile: env.certFile, keyFile: env.keyFile, stateDir: join(env.dir, 'quiclb-state') },
      quic: { enabled: h3, idleTimeout },
      // Off, as it is by default: the bench sends everything from one address.
      rateLimit: { enabled: false },
      loadBalancer: {
        strategy: 'round_robin',
        sessionPersistence: false,
        backendServers: env.backends.map((b) => ({ id: b.id, host: '127.0.0.1', port: b.port })),
      },
      healthCheck: { enabled: true, path: '/', interval: '2s', timeout: '1s' },
      // "info" so the launcher sees "quiclb ready"; the access log is off, as in production under load.
      logging: { level: 'info', format: 'json', accessLog: false },
      cache: { enabled: opts.cache === true },
    },
  });
  return {
    name: opts.cache === true ? 'quiclb+cache' : 'quiclb',
    endpoints: standardEndpoints(q.httpPort, q.httpsPort, h3),
    pids: () => [q.child.pid!],
    primaryPid: q.child.pid!,
    stop: async () => {
      await q.stop();
    },
  };
}

async function peerDir(env: PeerEnv, name: string): Promise<string> {
  const d = join(env.dir, name);
  await mkdir(d, { recursive: true });
  return d;
}

/**
 * nginx's shared cache as quiclb's is set up for Moodle: keyed by URL, one fetch for concurrent misses
 * (proxy_cache_lock), revalidation with the stored validators, stale answers while updating and on errors.
 */
function nginxCacheDirectives(d: string): { http: string; location: string } {
  return {
    http: `  proxy_cache_path ${d}/cache levels=1:2 keys_zone=lb_cache:16m max_size=256m inactive=60m use_temp_path=off;
`,
    location: `      proxy_cache lb_cache;
      proxy_cache_lock on;
      proxy_cache_revalidate on;
      proxy_cache_background_update on;
      proxy_cache_use_stale error timeout updating http_500 http_502 http_503 http_504;
`,
  };
}

export async function startNginxPeer(env: PeerEnv, opts: { cache?: boolean } = {}): Promise<Target> {
  const bin = findBin('nginx');
  if (bin === undefined) throw new BenchError('BENCH_NO_PEER', 'nginx not installed');
  const d = await peerDir(env, opts.cache === true ? 'nginx-cache' : 'nginx-lb');
  const cache = opts.cache === true ? nginxCacheDirectives(d) : { http: '', location: '' };
  const plain = await freePort();
  const tls = await freePort();
  // Streams bodies both ways (no request buffering, no temp files), keep-alive to the backends: like quiclb.
  const conf = `${nginxCommon(d, env.workers)}
http {
${nginxHttpCommon(d)}${cache.http}
  upstream backends {
${env.backends.map((b) => `    server 127.0.0.1:${b.port};`).join('\n')}
    keepalive 64;
  }
  server {
    listen 127.0.0.1:${plain} reuseport;
    listen 127.0.0.1:${tls} ssl http2 reuseport;
    ssl_certificate ${env.certFile};
    ssl_certificate_key ${env.keyFile};
    client_max_body_size 0;
    location / {
      proxy_pass http://backends;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $host;
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
      proxy_set_header X-Forwarded-Proto $scheme;
      proxy_request_buffering off;
      proxy_max_temp_file_size 0;
${cache.location}    }
  }
}
`;
  const file = join(d, 'nginx.conf');
  await writeFile(file, conf);
  const proc = startProcess('nginx (peer)', bin, ['-p', d, '-c', file, '-e', join(d, 'error.log'), '-g', 'daemon off;'], join(d, 'out.log'));
  await waitPorts(proc, [plain, tls]);
  const name = opts.cache === true ? 'nginx+cache' : 'nginx';
  return { name, endpoints: standardEndpoints(plain, tls, false), pids: () => processTree(proc.child.pid!), stop: () => proc.stop() };
}

export async function startHaproxyPeer(env: PeerEnv): Promise<Target> {
  const bin = findBin('haproxy');
  if (bin === undefined) throw new BenchError('BENCH_NO_PEER', 'haproxy not installed');
  const d = await peerDir(env, 'haproxy');
  const plain = await freePort();
  const tls = await freePort();
  const pem = join(d, 'combined.pem');
  await writeFile(pem, Buffer.concat([await readFile(env.certFile), Buffer.from('\n'), await readFile(env.keyFile)]));
  const conf = `global
  nbthread ${env.workers}
  maxconn 8000
  log stderr format short local0 warning
defaults
  mode http
  timeout connect 5s
  timeout client 120s
  timeout server 120s
  option http-keep-alive
  http-reuse always
frontend fe
  bind 127.0.0.1:${plain}
  bind 127.0.0.1:${tls} ssl crt ${pem} alpn h2,http/1.1
  option forwardfor
  default_backend be
backend be
  balance roundrobin
${env.backends.map((b) => `  server ${b.id} 127.0.0.1:${b.port}`).join('\n')}
`;
  const file = join(d, 'haproxy.cfg');
  await writeFile(file, conf);
  const proc = startProcess('haproxy (peer)', bin, ['-db', '-f', file], join(d, 'out.log'));
  await waitPorts(proc, [plain, tls]);
  return { name: 'haproxy', endpoints: standardEndpoints(plain, tls, false), pids: () => processTree(proc.child.pid!), stop: () => proc.stop() };
}

export async function startCaddyPeer(env: PeerEnv): Promise<Target> {
  const bin = findBin('caddy');
  if (bin === undefined) throw new BenchError('BENCH_NO_PEER', 'caddy not installed');
  const d = await peerDir(env, 'caddy');
  const plain = await freePort();
  const tls = await freePort();
  const upstreams = env.backends.map((b) => `127.0.0.1:${b.port}`).join(' ');
  const proxy = `  reverse_proxy ${upstreams} {
    lb_policy round_robin
  }`;
  const conf = `{
  admin off
  auto_https disable_redirects
  skip_install_trust
  storage file_system ${d}/data
  servers {
    protocols h1 h2 h3
  }
}
http://127.0.0.1:${plain} {
${proxy}
}
https://127.0.0.1:${tls} {
  tls ${env.certFile} ${env.keyFile}
${proxy}
}
`;
  const file = join(d, 'Caddyfile');
  await writeFile(file, conf);
  const proc = startProcess('caddy (peer)', bin, ['run', '--config', file, '--adapter', 'caddyfile'], join(d, 'out.log'), {
    HOME: d,
    XDG_DATA_HOME: join(d, 'xdg-data'),
    XDG_CONFIG_HOME: join(d, 'xdg-config'),
    GOMAXPROCS: String(env.workers),
  });
  await waitPorts(proc, [plain, tls]);
  return { name: 'caddy', endpoints: standardEndpoints(plain, tls, true), pids: () => processTree(proc.child.pid!), stop: () => proc.stop() };
}

/**
 * The 15-line Node proxy (bench/node15.ts) in its own process: the reference for plain Node. One thread
 * whatever the scenario's worker count (it is the issue's proxy as written, without cluster).
 */
export async function startNode15Target(env: PeerEnv): Promise<Target> {
  const d = await peerDir(env, 'node15');
  const plain = await freePort();
  const tls = await freePort();
  const script = new URL('../node15.ts', import.meta.url).pathname;
  const args = [script, String(plain), String(tls), env.certFile, env.keyFile, ...env.backends.map((b) => `127.0.0.1:${b.port}`)];
  const proc = startProcess('node15', process.execPath, args, join(d, 'out.log'));
  // Node loads undici and strips types first: seconds on a busy machine.
  await waitPorts(proc, [plain, tls], 60_000);
  return { name: 'node15', endpoints: standardEndpoints(plain, tls, false), pids: () => [proc.child.pid!], stop: () => proc.stop() };
}

export const PEERS = {
  node15: { bin: 'node', start: startNode15Target },
  nginx: { bin: 'nginx', start: (env: PeerEnv) => startNginxPeer(env) },
  haproxy: { bin: 'haproxy', start: startHaproxyPeer },
  caddy: { bin: 'caddy', start: startCaddyPeer },
} as const;
export type PeerName = keyof typeof PEERS;
