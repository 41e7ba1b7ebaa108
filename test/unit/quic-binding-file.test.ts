// The thread-safe copy of the quiche binding: made only from the known build, verified by SHA-256, written
// beside the original without touching it, and refused (falling back to the original) otherwise. The
// threads themselves are exercised by test/integration/quic-binding-threads.test.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { createRequire } from 'node:module';
import { copyFileSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ORIGINAL_SHA256, PATCHED_SHA256, patchBinding, prepareQuicheBinding } from '../../src/quic/quiche-binding-file.ts';

const installed = createRequire(import.meta.url).resolve('@matrixai/quic-linux-x64');
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

test('the installed binding is the build the patch was made for', () => {
  assert.equal(sha(readFileSync(installed)), ORIGINAL_SHA256, 'a new @matrixai/quic-linux-x64 needs a new measurement of the patch');
});

test('the patch changes exactly two bytes and yields the known image', () => {
  const original = readFileSync(installed);
  const patched = patchBinding(original);
  assert.ok(Buffer.isBuffer(patched), String(patched));
  assert.equal(sha(patched), PATCHED_SHA256);
  const diff: number[] = [];
  for (let i = 0; i < original.length; i++) if (original[i] !== patched[i]) diff.push(i);
  assert.deepEqual(diff, [0x1c4d1f, 0x1c4d20]);
  assert.equal(sha(original), ORIGINAL_SHA256, 'the input buffer is left as it was');
});

test('another build is refused, not patched', () => {
  const other = Buffer.from(readFileSync(installed));
  other[100] ^= 0xff;
  assert.match(String(patchBinding(other)), /unknown build/);
});

test('prepare writes a verified copy once, reuses it, and replaces a damaged one', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'quiclb-binding-'));
  const original = path.join(dir, 'node.napi.node');
  const target = path.join(dir, 'copy.node');
  copyFileSync(installed, original);

  const first = prepareQuicheBinding({ original, target });
  assert.deepEqual(first, { path: target, threadSafe: true, detail: 'copy written' });
  assert.equal(sha(readFileSync(target)), PATCHED_SHA256);
  assert.equal(sha(readFileSync(original)), ORIGINAL_SHA256, 'the original is never modified');

  assert.equal(prepareQuicheBinding({ original, target }).detail, 'verified copy');

  writeFileSync(target, 'truncated');
  const again = prepareQuicheBinding({ original, target });
  assert.equal(again.detail, 'stale copy replaced');
  assert.equal(sha(readFileSync(target)), PATCHED_SHA256);
});

test('an unknown build or an unwritable place falls back to the original, saying why', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'quiclb-binding-'));
  const original = path.join(dir, 'node.napi.node');
  const bytes = Buffer.from(readFileSync(installed));
  bytes[100] ^= 0xff;
  writeFileSync(original, bytes);
  const unknown = prepareQuicheBinding({ original, target: path.join(dir, 'copy.node') });
  assert.equal(unknown.threadSafe, false);
  assert.equal(unknown.path, original);
  assert.match(unknown.detail, /unknown build/);

  copyFileSync(installed, original);
  const unwritable = prepareQuicheBinding({ original, target: path.join(dir, 'missing-dir', 'copy.node') });
  assert.equal(unwritable.threadSafe, false);
  assert.equal(unwritable.path, original);
  assert.match(unwritable.detail, /cannot write .*missing-dir/);
});
