// quiclb with its response cache on, in front of real nginx + php-fpm backends serving
// test/fixtures/php/cache/resource.php (caching headers from the query string, every run logged), and the
// clients the cache tests drive it with: curl (HTTP/1.1, HTTP/2), node:http2 and our HTTP/3 client.
import { readFile } from 'node:fs/promises';
import { connect } from 'node:http2';
import path from 'node:path';
import { h3Fetch } from '../../bench/lib/h3-client.ts';
import { startPhpBackends, type PhpBackendSet } from './php-backends.ts';
import { startQuiclb, type QuiclbProcess, type StartOptions } from './quiclb-process.ts';
import { execFileP, getJson } from './http-client.ts';

/** One run of resource.php, as it logged it. */
export interface Run {
  run: number;
  backend: string;
  status: number;
  ifNoneMatch: string | null;
  ifModifiedSince: string | null;
  acceptEncoding: string | null;
  authorization: string | null;
  cookie: string | null;
}

export interface Answer {
  status: number;
  /** Lowercase names; repeated fields joined with ", " (set-cookie kept apart in setCookies). */
  headers: Record<string, string>;
  setCookies: string[];
  body: Buffer;
  /** What the client spoke: "1.1", "2", "3". */
  httpVersion: string;
}

export interface CacheLb {
  php: PhpBackendSet;
  lb: QuiclbProcess;
  /** https://127.0.0.1:<httpsPort> — one cache key for HTTP/1.1 over TLS, HTTP/2 and HTTP/3. */
  origin: string;
  stats(): Promise<any>;
  /** resource.php's runs for `id`, over every backend. */
  runs(id: string): Promise<Run[]>;
  stop(): Promise<void>;
}

export async function startCacheLb(config: StartOptions['config'], backends = 2): Promise<CacheLb> {
  const php = await startPhpBackends(backends);
  const token = (config.admin as { token?: string } | undefined)?.token;
  const adminHeaders: Record<string, string> = token === undefined ? {} : { authorization: `Bearer ${token}` };
  let lb: QuiclbProcess;
  try {
    lb = await startQuiclb({
      workers: 2,
      config: {
        ...config,
        healthCheck: { path: '/index.php', interval: '500ms', ...(config.healthCheck ?? {}) },
        loadBalancer: { ...(config.loadBalancer ?? {}), backendServers: php.backends.map((b) => ({ id: b.id, host: b.host, port: b.port })) },
      },
    });
  } catch (err) {
    await php.stop();
    throw err;
  }
  return {
    php,
    lb,
    origin: `https://127.0.0.1:${lb.httpsPort}`,
    stats: async () => (await getJson(`http://127.0.0.1:${lb.httpPort}/stats`, { headers: adminHeaders })).body,
    async runs(id) {
      let text: string;
      try {
        text = await readFile(path.join(php.dir, `cachelog-${id}.jsonl`), 'utf8');
      } catch {
        return [];
      }
      return text.split('\n').filter(Boolean).map((l) => JSON.parse(l) as Run);
    },
    async stop() {
      await lb.stop();
      await php.stop();
    },
  };
}

function parseHead(head: string): { status: number; headers: Record<string, string>; setCookies: string[] } {
  const lines = head.split('\r\n');
  const status = Number(lines[0].split(' ')[1]);
  const headers: Record<string, string> = {};
  const setCookies: string[] = [];
  for (const line of lines.slice(1)) {
    const c = line.indexOf(':');
    if (c <= 0) continue;
    const name = line.slice(0, c).trim().toLowerCase();
    const value = line.slice(c + 1).trim();
    if (name === 'set-cookie') setCookies.push(value);
    headers[name] = headers[name] === undefined ? value : `${headers[name]}, ${value}`;
  }
  return { status, headers, setCookies };
}

/** curl on a fresh connection: `--http1.1` or `--http2` (ALPN on TLS). Body bytes as sent (no decoding). */
export async function curl(url: string, opts: { http: '1.1' | '2'; headers?: Record<string, string>; method?: string } = { http: '1.1' }): Promise<Answer> {
  const args = ['-sS', '-k', '-i', `--http${opts.http}`, '--max-time', '20', '-w', '%{stderr}%{http_version}'];
  if (opts.method === 'HEAD') args.push('-I');
  else if (opts.method !== undefined) args.push('-X', opts.method);
  for (const [k, v] of Object.entries(opts.headers ?? {})) args.push('-H', `${k}: ${v}`);
  args.push(url);
  const { stdout, stderr } = await execFileP('curl', args, { encoding: 'buffer', maxBuffer: 64 * 1024 * 1024 });
  const end = stdout.indexOf('\r\n\r\n');
  const head = parseHead(stdout.subarray(0, end).toString('latin1'));
  return { ...head, body: stdout.subarray(end + 4), httpVersion: stderr.toString().trim() };
}

/** node:http2 on a fresh session. */
export async function http2Get(origin: string, pathname: string, headers: Record<string, string> = {}): Promise<Answer> {
  const session = connect(origin, { rejectUnauthorized: false });
  try {
    return await new Promise<Answer>((resolve, reject) => {
      session.once('error', reject);
      const stream = session.request({ ':path': pathname, ...headers });
      const chunks: Buffer[] = [];
      let head: Record<string, string | string[] | number | undefined> = {};
      stream.on('response', (h) => (head = h));
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.once('error', reject);
      stream.once('end', () => {
        const out: Record<string, string> = {};
        let setCookies: string[] = [];
        for (const [k, v] of Object.entries(head)) {
          if (k.startsWith(':') || v === undefined) continue;
          if (k === 'set-cookie') setCookies = ([] as string[]).concat(v as string | string[]);
          out[k] = Array.isArray(v) ? v.join(', ') : String(v);
        }
        resolve({ status: Number(head[':status']), headers: out, setCookies, body: Buffer.concat(chunks), httpVersion: '2' });
      });
    });
  } finally {
    session.close();
  }
}

/** Our HTTP/3 client on a fresh connection. */
export async function http3Get(port: number, pathname: string, headers: Array<[string, string]> = []): Promise<Answer> {
  const r = await h3Fetch({ host: '127.0.0.1', port, path: pathname, headers, collectBody: true, timeoutMs: 20_000 });
  const out: Record<string, string> = {};
  const setCookies: string[] = [];
  for (const [k, v] of r.headers) {
    if (k.startsWith(':')) continue;
    if (k === 'set-cookie') setCookies.push(v);
    out[k] = out[k] === undefined ? v : `${out[k]}, ${v}`;
  }
  return { status: r.status, headers: out, setCookies, body: r.body ?? Buffer.alloc(0), httpVersion: '3' };
}

/** The first line resource.php writes: which run produced the body. */
export function runOf(body: Buffer): number {
  const m = /run (\d+) from/.exec(body.subarray(0, 200).toString('latin1'));
  return m === null ? -1 : Number(m[1]);
}
