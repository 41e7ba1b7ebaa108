// Large bodies both ways through quiclb to php-fpm (FastCGI, no web server): 200 MB up and down with matching
// sha256 and quiclb's memory bounded, and bodies without a length (HTTP/1.1 chunked, HTTP/2 and HTTP/3 DATA
// without content-length), which quiclb spools to learn CONTENT_LENGTH, within server.maxBodySize.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { connect as h2connect } from 'node:http2';
import { Readable } from 'node:stream';
import { request } from 'undici';
import { startFpmBackends, type FpmBackendSet } from '../support/fpm-backends.ts';
import { buildMoodleTree, type MoodleTree } from '../support/moodle-tree.ts';
import { startQuiclb, type QuiclbProcess } from '../support/quiclb-process.ts';
import { expectedDownloadSha256 } from '../support/php-backends.ts';
import { execFileP } from '../support/http-client.ts';
import { H3Connection } from '../../bench/lib/h3-client.ts';

let tree: MoodleTree;
let fpm: FpmBackendSet;
let lb: QuiclbProcess;

before(async () => {
  tree = await buildMoodleTree();
  fpm = await startFpmBackends([{ id: 'fpm', listen: 'tcp', children: 4 }]);
  lb = await startQuiclb({ config: { loadBalancer: { backendServers: [fpm.backends[0].config()] }, moodle: { wwwRoot: tree.wwwRoot }, healthCheck: { interval: '2s', timeout: '2s' } }, workers: 2 });
});

after(async () => {
  await lb?.stop();
  await fpm?.stop();
  await tree?.remove();
});

const http = (p: string): string => `http://127.0.0.1:${lb.httpPort}${p}`;

/** A deterministic body of `size` bytes in 64 KiB chunks, hashed as it is produced (never held whole). */
function generatedBody(size: number): { stream: Readable; sha256: () => string } {
  const hash = createHash('sha256');
  const block = Buffer.alloc(65536);
  for (let i = 0; i < block.length; i++) block[i] = (i * 131 + 17) & 0xff;
  let sent = 0;
  let k = 0;
  const stream = new Readable({
    highWaterMark: 65536,
    read() {
      if (sent >= size) {
        this.push(null);
        return;
      }
      const n = Math.min(block.length, size - sent);
      const chunk = Buffer.from(block.subarray(0, n));
      if (n >= 4) chunk.writeUInt32BE(k++ >>> 0, 0);
      sent += n;
      hash.update(chunk);
      this.push(chunk);
    },
  });
  return { stream, sha256: () => hash.digest('hex') };
}

/** quiclb's resident memory (primary and shards are one process), sampled while `run` runs. */
async function peakRss<T>(run: () => Promise<T>): Promise<{ result: T; baseMiB: number; peakMiB: number }> {
  const rss = (): number => Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${lb.child.pid}/status`, 'utf8'))![1]) / 1024;
  const baseMiB = rss();
  let peakMiB = baseMiB;
  const timer = setInterval(() => (peakMiB = Math.max(peakMiB, rss())), 25);
  try {
    const result = await run();
    return { result, baseMiB, peakMiB };
  } finally {
    clearInterval(timer);
  }
}

const MB200 = 200 * 1024 * 1024;

test('a 200 MB upload with Content-Length streams to PHP: sha256 matches, quiclb RSS stays far below the body size', { timeout: 300_000 }, async (t) => {
  const body = generatedBody(MB200);
  const { result, baseMiB, peakMiB } = await peakRss(async () => {
    const res = await request(http('/upload.php'), { method: 'POST', body: body.stream, headers: { 'content-length': String(MB200), 'content-type': 'application/octet-stream' } });
    return { status: res.statusCode, json: (await res.body.json()) as { bytes: number; sha256: string } };
  });
  t.diagnostic(`quiclb RSS ${baseMiB.toFixed(0)} MiB before, peak ${peakMiB.toFixed(0)} MiB during a 200 MiB upload`);
  assert.equal(result.status, 200);
  assert.equal(result.json.bytes, MB200);
  assert.equal(result.json.sha256, body.sha256());
  // Holding the body would add 200 MiB; freed 64 KiB chunks that wait for a GC account for the rest.
  assert.ok(peakMiB - baseMiB < 120, `RSS grew by ${(peakMiB - baseMiB).toFixed(0)} MiB`);
});

test('a 200 MB download from PHP: sha256 matches, quiclb RSS stays far below the body size', { timeout: 300_000 }, async (t) => {
  const { result, baseMiB, peakMiB } = await peakRss(async () => {
    const res = await request(http(`/download.php?bytes=${MB200}&seed=9`));
    const hash = createHash('sha256');
    let bytes = 0;
    for await (const chunk of res.body) {
      hash.update(chunk as Buffer);
      bytes += (chunk as Buffer).length;
    }
    return { status: res.statusCode, bytes, sha: hash.digest('hex') };
  });
  t.diagnostic(`quiclb RSS ${baseMiB.toFixed(0)} MiB before, peak ${peakMiB.toFixed(0)} MiB during a 200 MiB download`);
  assert.equal(result.status, 200);
  assert.equal(result.bytes, MB200);
  assert.equal(result.sha, expectedDownloadSha256(MB200, 9));
  assert.ok(peakMiB - baseMiB < 120, `RSS grew by ${(peakMiB - baseMiB).toFixed(0)} MiB`);
});

test('an HTTP/1.1 chunked upload (no Content-Length) of 20 MB is spooled and reaches PHP whole, with CONTENT_LENGTH', { timeout: 120_000 }, async () => {
  const size = 20 * 1024 * 1024 + 11;
  const body = generatedBody(size);
  const res = await request(http('/upload.php'), { method: 'POST', body: body.stream });
  const json = (await res.body.json()) as { bytes: number; sha256: string };
  assert.equal(res.statusCode, 200);
  assert.equal(json.bytes, size);
  assert.equal(json.sha256, body.sha256());
  const params = await request(http('/params.php'), { method: 'PUT', body: Readable.from([Buffer.from('abc'), Buffer.from('defg')]) });
  assert.equal(((await params.body.json()) as Record<string, string>).CONTENT_LENGTH, '7');
  // curl asks for 100 Continue before a chunked body: quiclb says so as soon as it spools (else curl would wait).
  const file = join(tree.dir, 'upload.bin');
  const data = Buffer.alloc(1024 * 1024 + 3, 0x61);
  await writeFile(file, data);
  const { stdout, stderr } = await execFileP('curl', ['-sv', '--expect100-timeout', '60', '-H', 'Transfer-Encoding: chunked', '-H', 'Expect: 100-continue', '--data-binary', `@${file}`, http('/upload.php')]);
  assert.match(stderr, /< HTTP\/1\.1 100 Continue/);
  assert.equal((JSON.parse(stdout) as { sha256: string }).sha256, createHash('sha256').update(data).digest('hex'));
});

test('HTTP/2 and HTTP/3 uploads without content-length are spooled too', { timeout: 120_000 }, async () => {
  const size = 3 * 1024 * 1024 + 5;
  const data = Buffer.alloc(size);
  for (let i = 0; i < size; i++) data[i] = (i * 7 + 3) & 0xff;
  const want = createHash('sha256').update(data).digest('hex');
  const session = h2connect(`https://127.0.0.1:${lb.httpsPort}`, { rejectUnauthorized: false });
  try {
    const text = await new Promise<string>((resolve, reject) => {
      const req = session.request({ ':method': 'POST', ':path': '/upload.php' });
      let out = '';
      req.setEncoding('utf8');
      req.on('data', (c: string) => (out += c));
      req.on('end', () => resolve(out));
      req.on('error', reject);
      req.end(data);
    });
    const json = JSON.parse(text) as { bytes: number; sha256: string };
    assert.equal(json.bytes, size);
    assert.equal(json.sha256, want);
  } finally {
    session.close();
  }
  const conn = await H3Connection.connect({ host: '127.0.0.1', port: lb.httpsPort });
  try {
    const res = await conn.request({ method: 'POST', path: '/upload.php', body: data, collectBody: true, timeoutMs: 60_000 });
    assert.equal(res.status, 200);
    const json = JSON.parse(res.body!.toString()) as { bytes: number; sha256: string };
    assert.equal(json.bytes, size);
    assert.equal(json.sha256, want);
  } finally {
    conn.close();
  }
});

test('a client that abandons its upload costs the php-fpm backend nothing: no error, no passive failure', { timeout: 60_000 }, async () => {
  const stats = async (): Promise<{ requests: number; errors: number }> => {
    const s = (await (await request(http('/stats'))).body.json()) as { backends: Array<{ requests: number; errors: number }> };
    return s.backends[0];
  };
  const { connect } = await import('node:net');
  /** Sends a head and `send` bytes of body, then drops the connection. */
  const abandon = (head: string, send: Buffer): Promise<void> =>
    new Promise((resolve) => {
      const sock = connect(lb.httpPort, '127.0.0.1', () => {
        sock.write(head);
        sock.write(send, () => setTimeout(() => sock.destroy(), 300));
      });
      sock.on('close', () => resolve());
      sock.on('error', () => undefined);
    });
  const before = await stats();
  // With a length: streamed to PHP, which sees its STDIN cut; the request reached the backend.
  await abandon(`POST /upload.php HTTP/1.1\r\nHost: x\r\nContent-Length: ${10 * 1024 * 1024}\r\n\r\n`, Buffer.alloc(1024 * 1024, 1));
  // Chunked: still being spooled when the client leaves; nothing was sent to php-fpm.
  await abandon('POST /upload.php HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n', Buffer.from(`100000\r\n${'a'.repeat(0x100000)}\r\n`));
  await new Promise((r) => setTimeout(r, 500));
  const after = await stats();
  assert.equal(after.errors, before.errors, 'no error counted against php-fpm');
  assert.ok(after.requests - before.requests <= 1, `${after.requests - before.requests} requests reached php-fpm`);
  const m = await (await request(http('/metrics'))).body.text();
  assert.match(m, /quiclb_backend_passive_failures\{backend="fpm"\} 0/);
  assert.ok(!lb.logs().some((e) => e.msg === 'backend request failed'), 'nothing logged as a backend failure');
});

test('server.maxBodySize bounds spooled bodies: a chunked upload past it is 413, and nothing reaches PHP', { timeout: 120_000 }, async () => {
  const small = await startQuiclb({
    config: { loadBalancer: { backendServers: [fpm.backends[0].config()] }, moodle: { wwwRoot: tree.wwwRoot }, server: { maxBodySize: '1MiB' }, healthCheck: { enabled: false } },
    workers: 1,
  });
  try {
    const chunked = await request(`http://127.0.0.1:${small.httpPort}/upload.php`, { method: 'POST', body: generatedBody(2 * 1024 * 1024).stream });
    assert.equal(chunked.statusCode, 413);
    assert.match(await chunked.body.text(), /^413 /);
    const under = generatedBody(512 * 1024);
    const ok = await request(`http://127.0.0.1:${small.httpPort}/upload.php`, { method: 'POST', body: under.stream });
    assert.equal(((await ok.body.json()) as { sha256: string }).sha256, under.sha256());
    const s = (await (await request(`http://127.0.0.1:${small.httpPort}/stats`)).body.json()) as { backends: Array<{ requests: number }> };
    assert.equal(s.backends[0].requests, 1, 'only the upload within the limit reached php-fpm');
  } finally {
    await small.stop();
  }
});
