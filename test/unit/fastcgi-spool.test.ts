import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { prepareFastCgiBody, spoolBody } from '../../src/fastcgi/spool.ts';
import type { FrontRequest } from '../../src/shared/http-types.ts';

function chunks(n: number, size: number): Buffer[] {
  return Array.from({ length: n }, (_, i) => Buffer.alloc(size, i & 0xff));
}

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

async function readAll(s: Readable): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of s) parts.push(c as Buffer);
  return Buffer.concat(parts);
}

test('a body without length is spooled to an unlinked file and read back whole with its size', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'quiclb-spool-'));
  try {
    const data = Buffer.concat(chunks(40, 100_000));
    const body = Readable.from(chunks(40, 100_000));
    const spooled = await spoolBody(body, { maxBytes: 0, dir });
    assert.equal(spooled.contentLength, 4_000_000);
    assert.equal(spooled.spooled, true);
    // Unlinked at once: nothing in the directory while the body is still being used.
    assert.deepEqual(readdirSync(dir), []);
    const back = await readAll(spooled.body as Readable);
    assert.equal(sha(back), sha(data));
    await spooled.dispose();
    await spooled.dispose(); // idempotent
    assert.deepEqual(readdirSync(dir), []);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the limit (server.maxBodySize) gives QUICLB_SPOOL_TOO_LARGE and leaves the stream to the caller', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'quiclb-spool-'));
  try {
    const body = Readable.from(chunks(10, 1000));
    await assert.rejects(spoolBody(body, { maxBytes: 5000, dir }), (e: Error & { code?: string }) => e.code === 'QUICLB_SPOOL_TOO_LARGE');
    assert.equal(body.destroyed, false, 'not destroyed: the frontend decides how to discard it');
    assert.deepEqual(readdirSync(dir), []);
    // Exactly the limit is fine.
    const ok = await spoolBody(Readable.from(chunks(5, 1000)), { maxBytes: 5000, dir });
    assert.equal(ok.contentLength, 5000);
    await ok.dispose();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a body that fails while spooling gives QUICLB_SPOOL_BODY_FAILED; an unwritable dir QUICLB_SPOOL_IO', async () => {
  const failing = new Readable({ read() {} });
  failing.push(Buffer.alloc(10));
  setTimeout(() => failing.destroy(new Error('reset by client')), 10);
  await assert.rejects(spoolBody(failing, { maxBytes: 0 }), (e: Error & { code?: string }) => e.code === 'QUICLB_SPOOL_BODY_FAILED' && /reset by client/.test(e.message));
  // Failing before the temporary file is even open (a slow disk, a busy machine): still a rejection, never an
  // 'error' event without a listener.
  const early = new Readable({ read() {} });
  process.nextTick(() => early.destroy(new Error('reset by client early')));
  await assert.rejects(spoolBody(early, { maxBytes: 0 }), (e: Error & { code?: string }) => e.code === 'QUICLB_SPOOL_BODY_FAILED' && /early/.test(e.message));
  await assert.rejects(spoolBody(Readable.from([Buffer.alloc(1)]), { maxBytes: 0, dir: '/nonexistent-dir-quiclb' }), (e: Error & { code?: string }) => e.code === 'QUICLB_SPOOL_IO');
});

test('prepareFastCgiBody: no body, a body with content-length streams through, one without is spooled', async () => {
  const req = (headers: FrontRequest['headers'], body: Readable | null): FrontRequest => ({
    protocol: 'HTTP/2', method: 'POST', scheme: 'https', authority: 'x', path: '/upload.php', headers, body,
    remoteAddress: '127.0.0.1', remotePort: 1, localPort: 2, connectionKey: 'c', shard: 0,
  });
  const none = await prepareFastCgiBody(req([], null), { maxBytes: 0 });
  assert.deepEqual([none.body, none.contentLength, none.spooled], [null, 0, false]);
  const stream = Readable.from([Buffer.alloc(3)]);
  const direct = await prepareFastCgiBody(req([['content-length', '3']], stream), { maxBytes: 0 });
  assert.equal(direct.body, stream);
  assert.equal(direct.contentLength, 3);
  const chunked = await prepareFastCgiBody(req([], Readable.from([Buffer.from('abc'), Buffer.from('de')])), { maxBytes: 0 });
  assert.equal(chunked.spooled, true);
  assert.equal(chunked.contentLength, 5);
  assert.equal((await readAll(chunked.body as Readable)).toString(), 'abcde');
  await chunked.dispose();
});
