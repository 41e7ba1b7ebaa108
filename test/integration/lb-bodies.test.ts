// 200 MiB each way through quiclb, streamed: the sha256 matches on both sides and quiclb's memory stays
// bounded (a buffered body would add at least its own size to the process's peak RSS).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { request } from 'undici';
import { startPhpBackends, expectedDownloadSha256 } from '../support/php-backends.ts';
import type { PhpBackendSet } from '../support/php-backends.ts';
import { startQuiclb } from '../support/quiclb-process.ts';
import type { QuiclbProcess } from '../support/quiclb-process.ts';

const SIZE = 200 * 1024 * 1024;
let php: PhpBackendSet;
let lb: QuiclbProcess;

function rssKiB(pid: number, field: 'VmRSS' | 'VmHWM'): number {
  const m = new RegExp(`${field}:\\s+(\\d+) kB`).exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m![1]);
}

before(async () => {
  php = await startPhpBackends(1);
  const backendServers = php.backends.map((b) => ({ id: b.id, host: b.host, port: b.port }));
  lb = await startQuiclb({ config: { loadBalancer: { backendServers }, server: { readTimeout: '60s' } }, workers: 1 });
});

after(async () => {
  await lb?.stop();
  await php?.stop();
});

test('a 200 MiB upload streams through with a matching sha256 and bounded memory', { timeout: 120_000 }, async () => {
  const before = rssKiB(lb.child.pid!, 'VmRSS');
  const block = randomBytes(1024 * 1024);
  const hash = createHash('sha256');
  let sent = 0;
  const body = new Readable({
    read() {
      if (sent >= SIZE) return this.push(null);
      hash.update(block);
      sent += block.length;
      this.push(block);
    },
  });
  const res = await request(`http://127.0.0.1:${lb.httpPort}/upload.php`, {
    method: 'POST',
    body,
    headers: { 'content-type': 'application/octet-stream', 'content-length': String(SIZE) },
    bodyTimeout: 60_000,
  });
  const json = (await res.body.json()) as { sha256: string; bytes: number };
  assert.equal(res.statusCode, 200);
  assert.equal(json.bytes, SIZE);
  assert.equal(json.sha256, hash.digest('hex'));
  const peak = rssKiB(lb.child.pid!, 'VmHWM');
  assert.ok(peak - before < 100 * 1024, `quiclb peak RSS grew by ${Math.round((peak - before) / 1024)} MiB`);
});

test('a 200 MiB download over HTTP/2 (curl) streams through with a matching sha256', { timeout: 120_000 }, async () => {
  const before = rssKiB(lb.child.pid!, 'VmHWM');
  const curl = spawn('curl', ['-sk', '--http2', '--fail', `https://127.0.0.1:${lb.httpsPort}/download.php?bytes=${SIZE}&seed=7`]);
  const hash = createHash('sha256');
  let bytes = 0;
  for await (const chunk of curl.stdout) {
    hash.update(chunk as Buffer);
    bytes += (chunk as Buffer).length;
  }
  const code = await new Promise((r) => curl.once('close', r));
  assert.equal(code, 0);
  assert.equal(bytes, SIZE);
  assert.equal(hash.digest('hex'), expectedDownloadSha256(SIZE, 7));
  const peak = rssKiB(lb.child.pid!, 'VmHWM');
  assert.ok(peak - before < 100 * 1024, `quiclb peak RSS grew by ${Math.round((peak - before) / 1024)} MiB`);
});
