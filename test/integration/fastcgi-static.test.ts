// quiclb as Moodle's web server in FastCGI mode, the files it serves itself: static files under moodle.wwwRoot
// (bytes, validators and 304, Range and 206, MIME types) on HTTP/1.1, HTTP/2 and HTTP/3; every forbidden path in
// raw, encoded, double-encoded and NUL forms; X-Accel-Redirect from PHP (and from an HTTP backend) streaming a file
// of moodle.dataRoot. Real quiclb, real php-fpm on a unix socket, curl, gtlsclient, undici, node:http2, raw sockets.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, readFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { connect as h2connect, type ClientHttp2Session } from 'node:http2';
import { connect as tcpConnect } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { request } from 'undici';
import { startFpmBackends, type FpmBackendSet } from '../support/fpm-backends.ts';
import { buildMoodleTree, type MoodleTree } from '../support/moodle-tree.ts';
import { startQuiclb, type QuiclbProcess } from '../support/quiclb-process.ts';
import { execFileP } from '../support/http-client.ts';
import { gtlsclient } from '../support/quic-harness.ts';
import { H3Connection } from '../../bench/lib/h3-client.ts';

let tree: MoodleTree;
let fpm: FpmBackendSet;
let lb: QuiclbProcess;
let scratch: string;

before(async () => {
  tree = await buildMoodleTree();
  fpm = await startFpmBackends([{ id: 'fpm', listen: 'unix', children: 6 }]);
  // The seed's shorthand, plus the dataroot for X-Accel-Redirect.
  lb = await startQuiclb({
    config: { moodle: { phpFpmSocket: fpm.backends[0].socketPath, wwwRoot: tree.wwwRoot, dataRoot: tree.dataRoot }, healthCheck: { interval: '1s', timeout: '1s' } },
    workers: 2,
  });
  scratch = await mkdtemp(path.join(tmpdir(), 'quiclb-fcgi-static-'));
});

after(async () => {
  await lb?.stop();
  await fpm?.stop();
  await tree?.remove();
});

const http = (p: string): string => `http://127.0.0.1:${lb.httpPort}${p}`;
const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');
const encodePath = (p: string): string => p.split('/').map(encodeURIComponent).join('/');

// ---- clients that send a target exactly as given -----------------------------------------------------

interface RawAnswer {
  status: number;
  text: string;
}

/** HTTP/1.1 over a raw socket: the request line carries `target` byte for byte. */
function rawGet(target: string | Buffer): Promise<RawAnswer> {
  return new Promise((resolve, reject) => {
    const s = tcpConnect(lb.httpPort, '127.0.0.1');
    const chunks: Buffer[] = [];
    s.on('data', (c: Buffer) => chunks.push(c));
    s.on('error', reject);
    s.on('close', () => {
      const text = Buffer.concat(chunks).toString('latin1');
      resolve({ status: Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0), text });
    });
    s.write(Buffer.concat([Buffer.from('GET '), Buffer.from(target), Buffer.from(' HTTP/1.1\r\nHost: moodle.test\r\nConnection: close\r\n\r\n')]));
    setTimeout(() => s.destroy(), 10_000).unref();
  });
}

function h2Get(session: ClientHttp2Session, target: string): Promise<RawAnswer> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let status = 0;
    let text = '';
    const req = session.request({ ':method': 'GET', ':path': target });
    req.on('response', (h) => {
      status = Number(h[':status']);
      text = `${JSON.stringify(h)}\n`;
    });
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('close', () => resolve({ status, text: text + Buffer.concat(chunks).toString('latin1') }));
    req.on('error', () => undefined); // a reset counts as "nothing served": checked through status 0
    req.end();
  });
}

async function h3Get(conn: H3Connection, target: string): Promise<RawAnswer> {
  try {
    const r = await conn.request({ path: target, collectBody: true, timeoutMs: 10_000 });
    return { status: r.status, text: `${JSON.stringify(r.headers)}\n${r.body?.toString('latin1') ?? ''}` };
  } catch (err) {
    // A malformed request is reset (RFC 9114 §4.1.2): nothing was served.
    return { status: 0, text: String(err) };
  }
}

// ---- static files --------------------------------------------------------------------------------------

describe('static files under moodle.wwwRoot, served by quiclb', () => {
  test('HTTP/1.1 (undici): bytes, MIME type, validators; 304 on If-None-Match and If-Modified-Since; 206 on Range; HEAD; 405 on POST', async () => {
    for (const f of tree.statics) {
      const res = await request(http(encodePath(f.path)));
      const body = Buffer.from(await res.body.arrayBuffer());
      assert.equal(res.statusCode, 200, f.path);
      assert.equal(sha(body), sha(f.body), f.path);
      assert.equal(res.headers['content-type'], f.type, f.path);
      assert.equal(res.headers['content-length'], String(f.body.length));
      assert.equal(res.headers['accept-ranges'], 'bytes');
      const etag = res.headers.etag as string;
      assert.match(etag, /^"[0-9a-f]+-[0-9a-f]+"$/);
      const notModified = await request(http(encodePath(f.path)), { headers: { 'if-none-match': etag } });
      assert.equal(notModified.statusCode, 304, f.path);
      assert.equal((await notModified.body.arrayBuffer()).byteLength, 0);
      assert.equal(notModified.headers.etag, etag);
      const since = await request(http(encodePath(f.path)), { headers: { 'if-modified-since': res.headers['last-modified'] as string } });
      assert.equal(since.statusCode, 304);
      await since.body.dump();
    }
    const big = tree.statics.find((f) => f.path === '/files/big.bin')!;
    const part = await request(http(big.path), { headers: { range: 'bytes=1000000-1999999' } });
    assert.equal(part.statusCode, 206);
    assert.equal(part.headers['content-range'], `bytes 1000000-1999999/${big.body.length}`);
    assert.ok(Buffer.from(await part.body.arrayBuffer()).equals(big.body.subarray(1_000_000, 2_000_000)));
    const tail = await request(http(big.path), { headers: { range: 'bytes=-100' } });
    assert.equal(tail.statusCode, 206);
    assert.ok(Buffer.from(await tail.body.arrayBuffer()).equals(big.body.subarray(big.body.length - 100)));
    const past = await request(http(big.path), { headers: { range: `bytes=${big.body.length}-` } });
    assert.equal(past.statusCode, 416);
    await past.body.dump();
    const head = await request(http(big.path), { method: 'HEAD' });
    assert.equal(head.statusCode, 200);
    assert.equal(head.headers['content-length'], String(big.body.length));
    await head.body.dump();
    const post = await request(http(big.path), { method: 'POST', body: 'x' });
    assert.equal(post.statusCode, 405);
    assert.equal(post.headers.allow, 'GET, HEAD');
    await post.body.dump();
    // A directory without its slash is redirected; a .php that does not exist is quiclb's 404.
    const dir = await request(http('/sub?x=1'));
    assert.equal(dir.statusCode, 301);
    assert.equal(dir.headers.location, '/sub/?x=1');
    await dir.body.dump();
    const missing = await request(http('/course/nonexistent.php'));
    assert.equal(missing.statusCode, 404);
    assert.equal(await missing.body.text(), '404 Not Found\n');
  });

  test('HTTP/2 (curl): 3 MiB file byte for byte, 304, 206', async () => {
    const big = tree.statics.find((f) => f.path === '/files/big.bin')!;
    const url = `https://127.0.0.1:${lb.httpsPort}${big.path}`;
    const file = path.join(scratch, 'h2-big.bin');
    const { stdout } = await execFileP('curl', ['-sk', '--http2', '-o', file, '-D', '-', '-w', '%{http_version} %{http_code}', url]);
    assert.match(stdout, /content-type: application\/octet-stream/);
    assert.ok(stdout.endsWith('2 200'), stdout);
    assert.equal(sha(await readFile(file)), sha(big.body));
    const etag = /etag: (\S+)/.exec(stdout)![1];
    const cond = await execFileP('curl', ['-sk', '--http2', '-o', '/dev/null', '-w', '%{http_code}', '-H', `If-None-Match: ${etag}`, url]);
    assert.equal(cond.stdout, '304');
    const part = path.join(scratch, 'h2-part.bin');
    const ranged = await execFileP('curl', ['-sk', '--http2', '-o', part, '-w', '%{http_code}', '-r', '0-65535', url]);
    assert.equal(ranged.stdout, '206');
    assert.ok((await readFile(part)).equals(big.body.subarray(0, 65536)));
  });

  test('HTTP/3 (gtlsclient and the bench client): every static file byte for byte, MIME types, 304, 206', { timeout: 60_000 }, async () => {
    const dir = await mkdtemp(path.join(scratch, 'h3-static-'));
    const plain = tree.statics.filter((f) => !f.path.includes(' ') && !f.path.includes('/.'));
    const r = await gtlsclient(lb.httpsPort, plain.map((f) => f.path), [`--download=${dir}`, '-n', String(plain.length)], 45_000);
    assert.equal(r.code, 0, r.stderr.slice(-2000));
    for (const f of plain) assert.equal(sha(await readFile(path.join(dir, path.basename(f.path)))), sha(f.body), f.path);
    const conn = await H3Connection.connect({ host: '127.0.0.1', port: lb.httpsPort });
    try {
      for (const f of tree.statics) {
        const res = await conn.request({ path: encodePath(f.path), collectBody: true, timeoutMs: 20_000 });
        assert.equal(res.status, 200, f.path);
        const h = new Map(res.headers);
        assert.equal(h.get('content-type'), f.type, f.path);
        assert.equal(sha(res.body!), sha(f.body), f.path);
        const cond = await conn.request({ path: encodePath(f.path), headers: [['if-none-match', h.get('etag')!]], timeoutMs: 10_000 });
        assert.equal(cond.status, 304, f.path);
      }
      const big = tree.statics.find((f) => f.path === '/files/big.bin')!;
      const part = await conn.request({ path: big.path, headers: [['range', 'bytes=10-20']], collectBody: true, timeoutMs: 10_000 });
      assert.equal(part.status, 206);
      assert.equal(new Map(part.headers).get('content-range'), `bytes 10-20/${big.body.length}`);
      assert.ok(part.body!.equals(big.body.subarray(10, 21)));
    } finally {
      conn.close();
    }
  });
});

// ---- forbidden paths -----------------------------------------------------------------------------------

/** The same path spelled every way a client might try to slip it through. */
function spellings(p: string): string[] {
  const last = p.lastIndexOf('/');
  const dir = p.slice(0, last + 1);
  const name = p.slice(last + 1);
  const hex = (c: string): string => `%${c.charCodeAt(0).toString(16).padStart(2, '0')}`;
  const out = new Set<string>([
    p,
    dir + hex(name[0]) + name.slice(1), // one character percent-encoded
    dir + hex(name[0]).toUpperCase() + name.slice(1),
    dir + name.split('').map(hex).join(''), // every character encoded
    dir + hex(name[0]).replace('%', '%25') + name.slice(1), // double-encoded
    p.replaceAll('.', '%2e'),
    p.replaceAll('.', '%252e'),
    p.replaceAll('/', '%2f').replace(/^%2f/, '/'),
    `${p}%00`,
    `${p}%00.png`,
    `${dir}${name}%00/`,
    `${p}/`,
    `//${p.slice(1)}`,
    `/files/..${p}`,
    `/files/%2e%2e${p}`,
  ]);
  return [...out];
}

/** Paths that reach outside wwwRoot (../outside/secret.txt beside it) by traversal or symlink. */
const TRAVERSALS = [
  '/../outside/secret.txt',
  '/files/../../outside/secret.txt',
  '/%2e%2e/outside/secret.txt',
  '/%2E%2E/outside/secret.txt',
  '/.%2e/outside/secret.txt',
  '/%252e%252e/outside/secret.txt',
  '/files/..%2f..%2foutside/secret.txt',
  '/files%2f..%2f..%2foutside%2fsecret.txt',
  '/..%5c..%5coutside/secret.txt',
  '/..\\outside\\secret.txt',
  '/%2e%2e%2foutside%2fsecret.txt',
  '/%c0%ae%c0%ae/outside/secret.txt',
  '/escape.txt',
  '/escape.txt%00.png',
  '/escapedir/secret.txt',
  '/escapedir%2fsecret.txt',
  '/files/../escapedir/secret.txt',
];

function forbiddenTargets(): Array<{ target: string; markers: string[] }> {
  const markers = [...tree.forbidden.map((f) => f.marker), tree.outsideSecret];
  const targets = tree.forbidden.flatMap((f) => spellings(f.path)).concat(TRAVERSALS);
  return [...new Set(targets)].map((target) => ({ target, markers }));
}

/** PHP source run (config.php) answers 200 with its output, never its text; everything else is refused. */
function checkRefused(protocol: string, target: string, a: RawAnswer, markers: string[]): void {
  for (const m of markers) assert.ok(!a.text.includes(m), `${protocol} ${target}: the content of a forbidden file came back (${m}, status ${a.status})`);
  if (a.status === 200) {
    // Only a spelling of /config.php may answer 200: by running it, never by sending its text.
    assert.match(a.text, /config ran/, `${protocol} ${target}: 200 only from running the script`);
    return;
  }
  assert.ok([0, 301, 400, 403, 404].includes(a.status), `${protocol} ${target}: status ${a.status}`);
}

describe('forbidden paths never return their content', () => {
  test('HTTP/1.1 over a raw socket: every spelling of every forbidden path, traversals, a raw NUL byte', { timeout: 120_000 }, async () => {
    const list = forbiddenTargets();
    assert.ok(list.length > 300, `${list.length} targets`);
    for (const { target, markers } of list) checkRefused('HTTP/1.1', target, await rawGet(target), markers);
    const nul = await rawGet(Buffer.from('/.env\0.png'));
    assert.equal(nul.status, 400);
    // The default refusal is 404, the same as a missing file: nothing tells a prober what exists.
    assert.equal((await rawGet('/.git/config')).status, 404);
    assert.equal((await rawGet('/composer.json')).status, 404);
    // /.well-known/ stays reachable (RFC 8615).
    assert.equal((await rawGet('/.well-known/security.txt')).status, 200);
  });

  test('HTTP/2 (node:http2, :path as given) and curl --path-as-is', { timeout: 120_000 }, async () => {
    const session = h2connect(`https://127.0.0.1:${lb.httpsPort}`, { rejectUnauthorized: false });
    try {
      for (const { target, markers } of forbiddenTargets()) checkRefused('HTTP/2', target, await h2Get(session, target), markers);
    } finally {
      session.close();
    }
    for (const target of ['/../outside/secret.txt', '/.git/config', '/vendor/autoload.js', '/%2e%2e/outside/secret.txt', '/escape.txt']) {
      const { stdout } = await execFileP('curl', ['-sk', '--http2', '--path-as-is', '-w', '\n%{http_code}', `https://127.0.0.1:${lb.httpsPort}${target}`]);
      const status = Number(stdout.slice(stdout.lastIndexOf('\n') + 1));
      checkRefused('HTTP/2 curl', target, { status, text: stdout }, [...tree.forbidden.map((f) => f.marker), tree.outsideSecret]);
    }
  });

  test('HTTP/3 (the bench client on one connection, gtlsclient for a few)', { timeout: 180_000 }, async () => {
    let conn = await H3Connection.connect({ host: '127.0.0.1', port: lb.httpsPort });
    try {
      for (const { target, markers } of forbiddenTargets()) {
        const a = await h3Get(conn, target);
        checkRefused('HTTP/3', target, a, markers);
        if (a.status === 0) {
          // The stream (or connection) was reset for a malformed request: go on with a fresh one.
          conn.close();
          conn = await H3Connection.connect({ host: '127.0.0.1', port: lb.httpsPort });
        }
      }
    } finally {
      conn.close();
    }
    const dir = await mkdtemp(path.join(scratch, 'h3-forbidden-'));
    const targets = ['/.env', '/composer.lock', '/%2e%2e/outside/secret.txt', '/escapedir/secret.txt', '/lib/setup.inc'];
    await gtlsclient(lb.httpsPort, targets, [`--download=${dir}`, '-n', String(targets.length)]);
    for (const t of targets) {
      const body = await readFile(path.join(dir, path.basename(t)), 'utf8').catch(() => '');
      assert.ok(!/FORBIDDEN-CONTENT|OUTSIDE-SECRET/.test(body), `gtlsclient ${t}: ${body}`);
    }
  });
});

// ---- X-Accel-Redirect ------------------------------------------------------------------------------------

describe('X-Accel-Redirect streams files from moodle.dataRoot', () => {
  const target = (file: string, extra = ''): string => `/xsendfile.php?file=${encodeURIComponent(file)}${extra}`;

  test('HTTP/1.1 (undici): 8 MiB byte for byte, PHP headers kept, X-Accel-Redirect and PHP body never sent; Range, 304, HEAD', async () => {
    const { file, body } = tree.xaccel;
    const res = await request(http(target(file)));
    const got = Buffer.from(await res.body.arrayBuffer());
    assert.equal(res.statusCode, 200);
    assert.equal(sha(got), sha(body));
    assert.equal(res.headers['content-length'], String(body.length));
    assert.equal(res.headers['content-type'], 'application/pdf');
    assert.equal(res.headers['content-disposition'], 'attachment; filename="report.pdf"');
    assert.equal(res.headers['cache-control'], 'private, max-age=60');
    assert.equal(res.headers['x-backend-id'], 'fpm');
    assert.equal(res.headers['x-accel-redirect'], undefined);
    assert.ok(!got.includes('PHP-BODY-MUST-NOT-REACH-THE-CLIENT'));
    const part = await request(http(target(file)), { headers: { range: 'bytes=4194304-5242879' } });
    assert.equal(part.statusCode, 206);
    assert.equal(part.headers['content-range'], `bytes 4194304-5242879/${body.length}`);
    assert.equal(part.headers['content-disposition'], 'attachment; filename="report.pdf"');
    assert.ok(Buffer.from(await part.body.arrayBuffer()).equals(body.subarray(4194304, 5242880)));
    const cond = await request(http(target(file)), { headers: { 'if-none-match': res.headers.etag as string } });
    assert.equal(cond.statusCode, 304);
    assert.equal(cond.headers['cache-control'], 'private, max-age=60');
    await cond.body.dump();
    const head = await request(http(target(file)), { method: 'HEAD' });
    assert.equal(head.headers['content-length'], String(body.length));
    assert.equal(head.headers['x-accel-redirect'], undefined);
    await head.body.dump();
  });

  test('HTTP/2 (curl) and HTTP/3 (gtlsclient, the bench client): the same bytes and headers', { timeout: 60_000 }, async () => {
    const { file, body } = tree.xaccel;
    const out = path.join(scratch, 'xaccel-h2.bin');
    const { stdout } = await execFileP('curl', ['-sk', '--http2', '-o', out, '-D', '-', `https://127.0.0.1:${lb.httpsPort}${target(file)}`]);
    assert.match(stdout, /^HTTP\/2 200/);
    assert.match(stdout, /content-disposition: attachment; filename="report.pdf"/);
    assert.doesNotMatch(stdout, /x-accel-redirect/i);
    assert.equal(sha(await readFile(out)), sha(body));
    const dir = await mkdtemp(path.join(scratch, 'xaccel-h3-'));
    const r = await gtlsclient(lb.httpsPort, [target(file)], [`--download=${dir}`], 45_000);
    assert.equal(r.code, 0, r.stderr.slice(-2000));
    assert.equal(sha(await readFile(path.join(dir, path.basename(target(file))))), sha(body));
    const conn = await H3Connection.connect({ host: '127.0.0.1', port: lb.httpsPort });
    try {
      const res = await conn.request({ path: target(file), headers: [['range', 'bytes=0-999']], collectBody: true, timeoutMs: 20_000 });
      assert.equal(res.status, 206);
      assert.ok(res.body!.equals(body.subarray(0, 1000)));
      assert.ok(!res.headers.some(([n]) => n === 'x-accel-redirect'));
      assert.equal(new Map(res.headers).get('content-type'), 'application/pdf');
    } finally {
      conn.close();
    }
  });

  test('paths outside moodle.dataRoot, through a symlink, or outside the prefix are refused; a missing file is 404', async () => {
    for (const [file, extra] of [
      ['../outside/secret.txt', ''],
      ['filedir/../../outside/secret.txt', ''],
      ['escape-link.txt', ''],
      ['/../outside/secret.txt', ''],
      ['..%2foutside%2fsecret.txt', ''],
      [tree.xaccel.file, '&prefix=/elsewhere/'],
      ['filedir/00/00/missing', ''],
    ] as const) {
      const res = await request(http(target(file, extra)));
      const text = await res.body.text();
      assert.equal(res.statusCode, 404, `${file}${extra}`);
      assert.ok(!text.includes(tree.outsideSecret), file);
      assert.equal(res.headers['x-accel-redirect'], undefined);
    }
    assert.ok(lb.logs().some((e) => typeof e.msg === 'string' && e.msg.startsWith('X-Accel-Redirect refused')), 'refusals are logged');
  });

  test('an HTTP backend (not FastCGI) answering X-Accel-Redirect gets the same treatment', async () => {
    const backend: Server = createServer((req, res) => {
      res.writeHead(200, {
        'content-type': 'application/zip',
        'content-disposition': 'attachment; filename="course.mbz"',
        'x-accel-redirect': `/dataroot/${tree.xaccel.file}`,
      });
      res.end(req.url === '/leak' ? 'HTTP-BACKEND-BODY' : '');
    });
    await new Promise<void>((r) => backend.listen(0, '127.0.0.1', r));
    const port = (backend.address() as { port: number }).port;
    const viaHttp = await startQuiclb({
      config: { loadBalancer: { backendServers: [{ id: 'apache', host: '127.0.0.1', port }] }, moodle: { dataRoot: tree.dataRoot }, healthCheck: { enabled: false } },
      workers: 1,
    });
    try {
      for (const p of ['/pluginfile.php/1/backup/course.mbz', '/leak']) {
        const res = await request(`http://127.0.0.1:${viaHttp.httpPort}${p}`);
        const got = Buffer.from(await res.body.arrayBuffer());
        assert.equal(res.statusCode, 200);
        assert.equal(sha(got), sha(tree.xaccel.body));
        assert.equal(res.headers['content-type'], 'application/zip');
        assert.equal(res.headers['x-accel-redirect'], undefined);
      }
    } finally {
      await viaHttp.stop();
      backend.close();
    }
  });
});
