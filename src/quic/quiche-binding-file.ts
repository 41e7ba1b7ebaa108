// Which file of the quiche napi binding to load, and the one-branch fix that makes it safe in many threads.
//
// The binding (@matrixai/quic-linux-x64 2.0.9) is built with napi-rs 2.10.1. Every Uint8Array argument
// takes a napi reference that the argument's Drop releases at the end of the call. napi-rs 2.10.1 releases
// it directly only on the first thread that loaded the module; on any other thread it posts the release
// to that first thread's thread-safe function, which then unrefs and deletes a reference that belongs to
// another isolate (measured with gdb: every drop on a second worker calls napi_call_threadsafe_function).
// With three or more threads the process dies within seconds (GlobalHandles::Destroy, malloc
// corruption); with two it survives most runs; once the first thread has exited, the drops of every
// other thread return early and leak their references. Newer napi-rs keeps the custom GC per env.
//
// Every Drop of this binding runs on the JS thread that made the call (its quiche functions are all
// synchronous), so the direct release is always the right one. The fix: at the start of that check, one
// short jump straight to the direct unref/delete (`jmp +0x4d` over the "destroyed" flag, the main-thread
// id compare and the thread-safe-function call). The original file is never modified: a patched copy
// is written beside it, and both are identified by SHA-256, so any other build is refused, not patched.
// bench/quic-binding-threads.ts measures the original against the copy.
import { createHash } from 'node:crypto';
import { createRequire } from 'node:module';
import fs from 'node:fs';
import path from 'node:path';
import { threadId } from 'node:worker_threads';

export const ORIGINAL_SHA256 = '05dc4adc80f820d0afea2ff17221f37781e5468e245c46f92722584fd20515a8';
export const PATCHED_SHA256 = 'ddf51bab19f44b849a0b9e670deff73a1f44bb5a36d08ea313bf783794befe95';
/** File offset (= virtual address in this ELF) of `movzbl CUSTOM_GC_TSFN_DESTROYED(%rip),%eax` in the Drop. */
const PATCH_OFFSET = 0x1c4d1f;
const EXPECTED = Buffer.from('0fb6052abe1300', 'hex');
/** jmp rel8 to 0x1c4d6e, the `napi_reference_unref(env, ref)` path. */
const REPLACEMENT = Buffer.from('eb4d', 'hex');
export const PATCHED_FILE_NAME = 'node.napi.quiclb-threadsafe.node';

export interface PreparedBinding {
  /** The file to load. */
  path: string;
  /** True when every thread of the process may load it (the patched copy). */
  threadSafe: boolean;
  /** Why it is not thread-safe, or how the copy was obtained. */
  detail: string;
}

export interface PrepareOptions {
  /** The binding as installed (default: resolved from node_modules). */
  original?: string;
  /** Where the patched copy lives (default: beside the original). */
  target?: string;
  /** Write nothing; report what a real run would get (for `quiclb doctor`). */
  dryRun?: boolean;
}

function sha256(buf: Buffer): string {
  return createHash('sha256').update(buf).digest('hex');
}

function readIfExists(file: string): Buffer | undefined {
  try {
    return fs.readFileSync(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

/** The patched image of the original, or a reason why this file cannot be patched. */
export function patchBinding(original: Buffer): Buffer | string {
  const sum = sha256(original);
  if (sum !== ORIGINAL_SHA256) return `unknown build of the binding (sha256 ${sum.slice(0, 16)}…)`;
  if (!original.subarray(PATCH_OFFSET, PATCH_OFFSET + EXPECTED.length).equals(EXPECTED)) return 'unexpected bytes at the patch offset';
  const out = Buffer.from(original);
  REPLACEMENT.copy(out, PATCH_OFFSET);
  const after = sha256(out);
  if (after !== PATCHED_SHA256) return `patched image has sha256 ${after.slice(0, 16)}…`;
  return out;
}

/**
 * Finds or writes the thread-safe copy of the binding. Idempotent and safe to race: the copy is written to
 * a temporary name and renamed into place. Falls back to the original (threadSafe false) when the installed
 * file is an unknown build or the directory is read-only and no verified copy exists yet.
 */
export function prepareQuicheBinding(opts: PrepareOptions = {}): PreparedBinding {
  const original = opts.original ?? createRequire(import.meta.url).resolve('@matrixai/quic-linux-x64');
  const target = opts.target ?? path.join(path.dirname(original), PATCHED_FILE_NAME);
  const existing = readIfExists(target);
  if (existing !== undefined && sha256(existing) === PATCHED_SHA256) return { path: target, threadSafe: true, detail: 'verified copy' };
  const patched = patchBinding(fs.readFileSync(original));
  if (typeof patched === 'string') return { path: original, threadSafe: false, detail: patched };
  if (opts.dryRun) {
    try {
      fs.accessSync(path.dirname(target), fs.constants.W_OK);
      return { path: target, threadSafe: true, detail: 'copy not written yet (quiclb start writes it)' };
    } catch (err) {
      return { path: original, threadSafe: false, detail: `cannot write ${target}: ${(err as Error).message}` };
    }
  }
  const tmp = `${target}.tmp-${process.pid}-${threadId}`;
  try {
    fs.writeFileSync(tmp, patched, { mode: 0o644 });
    fs.renameSync(tmp, target);
  } catch (err) {
    fs.rmSync(tmp, { force: true });
    return { path: original, threadSafe: false, detail: `cannot write ${target}: ${(err as Error).message}` };
  }
  return { path: target, threadSafe: true, detail: existing === undefined ? 'copy written' : 'stale copy replaced' };
}
