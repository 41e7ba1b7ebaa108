// The bench's two backends: one Debian nginx (our own config in a temp dir) with two servers, each on a plain
// HTTP/1.1 port and a TLS port, serving fixed bodies from files, so the balancer, not the backend, is measured.
//   GET /small (100 B), /16k (16384 B), /64k (65536 B), /1m (1048576 B)  static files, sendfile
//   POST /upload  reads the whole body (client_body_buffer_size 2m keeps it in memory; proxy_request_buffering
//                 reads it all before answering), then answers 200 "ok" from /ok on the same server through a
//                 keep-alive upstream with the body left out (proxy_pass_request_body off).
//   GET /style.css  a 30,000-byte stylesheet with Cache-Control: public, max-age=3600 (and nginx's ETag and
//                   Last-Modified): what a Moodle theme stylesheet looks like to a cache (the cachedcss scenarios)
//   GET /  200 "ok" (health checks)
import { mkdir, writeFile, chmod } from 'node:fs/promises';
import { join } from 'node:path';
import { BenchError, findBin, freePort, startProcess, waitPorts, type Managed } from './procs.ts';

export const BODY_SIZES = { small: 100, '16k': 16384, '64k': 65536, '1m': 1048576 } as const;
export type SizeName = keyof typeof BODY_SIZES;
export const UPLOAD_PATH = '/upload';
/** The cacheable stylesheet of the cachedcss scenarios. */
export const CACHED_CSS = { path: '/style.css', bytes: 30000 } as const;

export interface Backend {
  id: string;
  port: number;
  tlsPort: number;
}

export interface BackendSet {
  backends: Backend[];
  proc: Managed;
  stop(): Promise<void>;
}

const isRoot = process.getuid?.() === 0;

function body(size: number): Buffer {
  const b = Buffer.alloc(size);
  for (let i = 0; i < size; i++) b[i] = 97 + (i % 26);
  return b;
}

/** CSS-looking text of `size` bytes. */
function stylesheet(size: number): Buffer {
  let css = '';
  for (let i = 0; css.length < size; i++) css += `.block-${i} .title { color: #${((i * 2654435761) & 0xffffff).toString(16).padStart(6, '0')}; margin: ${i % 17}px; }\n`;
  return Buffer.from(css.slice(0, size));
}

export function nginxCommon(dir: string, workers: number): string {
  return `${isRoot ? 'user root;' : ''}
worker_processes ${workers};
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
worker_rlimit_nofile 65536;
events { worker_connections 8192; }
`;
}

export function nginxHttpCommon(dir: string): string {
  return `  access_log off;
  client_body_temp_path ${dir}/tmp-body;
  proxy_temp_path ${dir}/tmp-proxy;
  fastcgi_temp_path ${dir}/tmp-fcgi;
  uwsgi_temp_path ${dir}/tmp-uwsgi;
  scgi_temp_path ${dir}/tmp-scgi;
  keepalive_requests 10000000;
  keepalive_timeout 75s;
  sendfile on;
  tcp_nopush on;
  tcp_nodelay on;
  server_tokens off;
`;
}

function serverBlock(b: Backend, www: string, certFile: string, keyFile: string): string {
  return `  upstream self_${b.port} { server 127.0.0.1:${b.port}; keepalive 32; }
  server {
    listen 127.0.0.1:${b.port} reuseport;
    listen 127.0.0.1:${b.tlsPort} ssl reuseport;
    ssl_certificate ${certFile};
    ssl_certificate_key ${keyFile};
    root ${www};
    location = / { default_type text/plain; return 200 "ok ${b.id}\\n"; }
    location = /ok { default_type text/plain; return 200 "ok\\n"; }
    location = ${CACHED_CSS.path} { default_type text/css; add_header Cache-Control "public, max-age=3600"; }
    location = ${UPLOAD_PATH} {
      client_max_body_size 0;
      client_body_buffer_size 2m;
      proxy_request_buffering on;
      proxy_pass_request_body off;
      proxy_set_header Content-Length "";
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_pass http://self_${b.port}/ok;
    }
    location / { default_type application/octet-stream; }
  }
`;
}

/** Starts two backends (one nginx, `workers` worker processes) and waits until every port answers. */
export async function startBackends(dir: string, certFile: string, keyFile: string, workers = 1): Promise<BackendSet> {
  const nginx = findBin('nginx');
  if (nginx === undefined) throw new BenchError('BENCH_NO_NGINX', 'nginx not found: run bench/install-peers.sh (apt-get install nginx)');
  const root = join(dir, 'backends');
  const www = join(root, 'www');
  await mkdir(www, { recursive: true });
  // nginx workers may run as another user: the temp dirs must be readable.
  await chmod(dir, 0o755);
  for (const [name, size] of Object.entries(BODY_SIZES)) await writeFile(join(www, name), body(size));
  await writeFile(join(www, CACHED_CSS.path.slice(1)), stylesheet(CACHED_CSS.bytes));
  const backends: Backend[] = [];
  for (let i = 0; i < 2; i++) backends.push({ id: `backend-${i + 1}`, port: await freePort(), tlsPort: await freePort() });
  const conf = `${nginxCommon(root, workers)}
http {
${nginxHttpCommon(root)}
${backends.map((b) => serverBlock(b, www, certFile, keyFile)).join('\n')}
}
`;
  const confFile = join(root, 'nginx.conf');
  await writeFile(confFile, conf);
  const proc = startProcess('backend nginx', nginx, ['-p', root, '-c', confFile, '-e', join(root, 'error.log'), '-g', 'daemon off;'], join(root, 'nginx.out'));
  await waitPorts(proc, backends.flatMap((b) => [b.port, b.tlsPort]));
  return { backends, proc, stop: () => proc.stop() };
}
