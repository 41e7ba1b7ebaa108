// The FastCGI scenarios' setting: one php-fpm pool on a unix socket serving a small Moodle-like tree, and in front
// of that same pool either nginx (the peer, and the baseline: Moodle's usual web server) or quiclb in FastCGI mode
// (no web server between it and php-fpm). Both serve the same three things:
//   GET /page.php      a small PHP page (FASTCGI_BODIES.php bytes of text/html)
//   GET /style.css     a static file (16 KiB), served by the web server itself
//   GET /xsend.php     PHP answering X-Accel-Redirect: /dataroot/file.bin, a 1 MiB file of the dataroot
// Neither keeps FastCGI connections alive (nginx's default, fastcgi_keep_conn off; quiclb's without maxConnections).
import { mkdir, writeFile, chmod } from 'node:fs/promises';
import { join } from 'node:path';
import { startQuiclb } from '../../test/support/quiclb-process.ts';
import { nginxCommon, nginxHttpCommon } from './backends.ts';
import { BenchError, findBin, freePort, processTree, startProcess, waitPorts, type Managed } from './procs.ts';
import type { PeerEnv, Target } from './targets.ts';

export type FastCgiKind = 'php' | 'static' | 'xaccel';

export const FASTCGI_PATHS: Record<FastCgiKind, string> = { php: '/page.php', static: '/style.css', xaccel: '/xsend.php' };
export const FASTCGI_BODIES: Record<FastCgiKind, number> = { php: 100, static: 16384, xaccel: 1048576 };

/** The baseline target's name in FastCGI scenarios. */
export const NGINX_FPM = 'nginx+php-fpm';

export interface FastCgiSite {
  www: string;
  data: string;
  socket: string;
  fpm: Managed;
  stop(): Promise<void>;
}

const isRoot = process.getuid?.() === 0;

function phpFpmBin(): string {
  for (const v of ['8.4', '8.3', '8.2', '8.1']) {
    const bin = findBin(`php-fpm${v}`);
    if (bin !== undefined) return bin;
  }
  const plain = findBin('php-fpm');
  if (plain === undefined) throw new BenchError('BENCH_NO_PHP_FPM', 'php-fpm not found: apt-get install php-fpm');
  return plain;
}

/** The tree, the dataroot and a php-fpm master with `children` static children on a unix socket. */
export async function startFastCgiSite(dir: string, children: number): Promise<FastCgiSite> {
  const root = join(dir, 'fastcgi');
  const www = join(root, 'www');
  const data = join(root, 'data');
  await mkdir(www, { recursive: true });
  await mkdir(data, { recursive: true });
  await chmod(dir, 0o755);
  await writeFile(join(www, 'page.php'), `<?php\nheader('Content-Type: text/html; charset=utf-8');\necho str_repeat('q', ${FASTCGI_BODIES.php});\n`);
  await writeFile(join(www, 'health.php'), `<?php\necho "ok\\n";\n`);
  await writeFile(
    join(www, 'xsend.php'),
    `<?php\nheader('Content-Type: application/octet-stream');\nheader('Content-Disposition: attachment; filename="file.bin"');\nheader('X-Accel-Redirect: /dataroot/file.bin');\n`,
  );
  await writeFile(join(www, 'style.css'), Buffer.alloc(FASTCGI_BODIES.static, 'a'));
  await writeFile(join(data, 'file.bin'), Buffer.alloc(FASTCGI_BODIES.xaccel, 'b'));
  const socket = join(root, 'php-fpm.sock');
  const conf = [
    '[global]',
    `pid = ${root}/php-fpm.pid`,
    `error_log = ${root}/php-fpm.log`,
    'daemonize = no',
    '[bench]',
    ...(isRoot ? ['user = root', 'group = root'] : []),
    `listen = ${socket}`,
    'listen.mode = 0666',
    'listen.backlog = 4096',
    'pm = static',
    `pm.max_children = ${children}`,
    '',
  ].join('\n');
  await writeFile(join(root, 'php-fpm.conf'), conf);
  await writeFile(join(root, 'php.ini'), 'opcache.enable = 1\nopcache.enable_cli = 0\noutput_buffering = 0\ndisplay_errors = 0\n');
  const fpm = startProcess('php-fpm', phpFpmBin(), ['-F', '-R', '-y', join(root, 'php-fpm.conf'), '-c', join(root, 'php.ini')], join(root, 'php-fpm.out'));
  const deadline = Date.now() + 10_000;
  const { existsSync } = await import('node:fs');
  while (!existsSync(socket)) {
    if (Date.now() > deadline) throw new BenchError('BENCH_NO_PHP_FPM', `php-fpm did not create ${socket} within 10 s`);
    await new Promise((r) => setTimeout(r, 25));
  }
  return { www, data, socket, fpm, stop: () => fpm.stop() };
}

function endpoints(plain: number, tls: number): Target['endpoints'] {
  return (protocol) => (protocol === 'h1' ? [{ port: plain, protocol }] : protocol === 'h3' ? undefined : [{ port: tls, protocol }]);
}

/** nginx as Moodle's docs set it up for php-fpm (fastcgi_split_path_info, try_files, an internal /dataroot/). */
export async function startNginxFpm(env: PeerEnv, site: FastCgiSite): Promise<Target> {
  const bin = findBin('nginx');
  if (bin === undefined) throw new BenchError('BENCH_NO_PEER', 'nginx not installed');
  const d = join(env.dir, 'nginx-fpm');
  await mkdir(d, { recursive: true });
  const plain = await freePort();
  const tls = await freePort();
  const conf = `${nginxCommon(d, env.workers)}
http {
${nginxHttpCommon(d)}
  types { text/css css; text/html html; }
  default_type application/octet-stream;
  server {
    listen 127.0.0.1:${plain} reuseport;
    listen 127.0.0.1:${tls} ssl http2 reuseport;
    ssl_certificate ${env.certFile};
    ssl_certificate_key ${env.keyFile};
    root ${site.www};
    index index.php;
    location ~ [^/]\\.php(/|$) {
      fastcgi_split_path_info ^(.+\\.php)(/.+)$;
      try_files $fastcgi_script_name =404;
      fastcgi_pass unix:${site.socket};
      fastcgi_param SCRIPT_FILENAME $document_root$fastcgi_script_name;
      fastcgi_param PATH_INFO $fastcgi_path_info;
      fastcgi_param QUERY_STRING $query_string;
      fastcgi_param REQUEST_METHOD $request_method;
      fastcgi_param CONTENT_TYPE $content_type;
      fastcgi_param CONTENT_LENGTH $content_length;
      fastcgi_param SCRIPT_NAME $fastcgi_script_name;
      fastcgi_param REQUEST_URI $request_uri;
      fastcgi_param DOCUMENT_URI $document_uri;
      fastcgi_param DOCUMENT_ROOT $document_root;
      fastcgi_param SERVER_PROTOCOL $server_protocol;
      fastcgi_param REQUEST_SCHEME $scheme;
      fastcgi_param HTTPS $https if_not_empty;
      fastcgi_param GATEWAY_INTERFACE CGI/1.1;
      fastcgi_param REMOTE_ADDR $remote_addr;
      fastcgi_param REMOTE_PORT $remote_port;
      fastcgi_param SERVER_NAME $host;
      fastcgi_param SERVER_PORT $server_port;
      fastcgi_param REDIRECT_STATUS 200;
    }
    location /dataroot/ {
      internal;
      alias ${site.data}/;
    }
  }
}
`;
  const file = join(d, 'nginx.conf');
  await writeFile(file, conf);
  const proc = startProcess('nginx (php-fpm)', bin, ['-p', d, '-c', file, '-e', join(d, 'error.log'), '-g', 'daemon off;'], join(d, 'out.log'));
  await waitPorts(proc, [plain, tls]);
  return { name: NGINX_FPM, endpoints: endpoints(plain, tls), pids: () => processTree(proc.child.pid!), stop: () => proc.stop() };
}

/** quiclb in FastCGI mode on the same pool: static files and X-Accel-Redirect served by quiclb itself. */
export async function startQuiclbFpm(env: PeerEnv, site: FastCgiSite): Promise<Target> {
  const q = await startQuiclb({
    workers: env.workers,
    env: env.quiclbEnv,
    config: {
      server: { idleTimeout: '120s' },
      tls: { certFile: env.certFile, keyFile: env.keyFile, stateDir: join(env.dir, 'quiclb-fpm-state') },
      quic: { enabled: false },
      rateLimit: { enabled: false },
      loadBalancer: { sessionPersistence: false, backendServers: [{ id: 'php-fpm', protocol: 'fastcgi', socket: site.socket }] },
      moodle: { wwwRoot: site.www, dataRoot: site.data },
      healthCheck: { enabled: true, path: '/health.php', interval: '2s', timeout: '1s' },
      logging: { level: 'info', format: 'json', accessLog: false },
    },
  });
  return {
    name: 'quiclb',
    endpoints: endpoints(q.httpPort, q.httpsPort),
    pids: () => [q.child.pid!],
    primaryPid: q.child.pid!,
    stop: async () => {
      await q.stop();
    },
  };
}
