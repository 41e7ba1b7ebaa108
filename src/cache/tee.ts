// The store step's tee: a BodySink that passes every chunk on to the sink after it (the client, or the
// compressor) at once and writes it to the store as it goes, in CHUNK_SIZE rows. The entry becomes
// visible only when the body ended complete; a body that grows past cache.maxEntrySize, does not match
// its Content-Length, or is abandoned (backend or client gone) leaves nothing behind.
import type { BodySink } from '../shared/http-types.ts';
import { CHUNK_SIZE } from './store-schema.ts';
import type { CacheStore, CommitResult } from './store.ts';

export type TeeOutcome =
  | { kind: 'stored'; result: CommitResult }
  | { kind: 'too-large' }
  | { kind: 'failed'; why: 'aborted' | 'length-mismatch' | 'purged' | 'error' };

export class TeeSink implements BodySink {
  private readonly downstream: BodySink;
  private readonly store: CacheStore;
  private readonly id: number;
  private readonly maxEntrySize: number;
  private readonly expectedLength: number | undefined;
  private readonly settle: (outcome: TeeOutcome, err?: unknown) => void;
  private pending: Uint8Array[] = [];
  private pendingBytes = 0;
  private total = 0;
  private seq = 0;
  private done = false;

  constructor(
    downstream: BodySink,
    store: CacheStore,
    id: number,
    maxEntrySize: number,
    expectedLength: number | undefined,
    settle: (outcome: TeeOutcome, err?: unknown) => void,
  ) {
    this.downstream = downstream;
    this.store = store;
    this.id = id;
    this.maxEntrySize = maxEntrySize;
    this.expectedLength = expectedLength;
    this.settle = settle;
  }

  write(chunk: Uint8Array): boolean {
    this.add(chunk);
    return this.downstream.write(chunk);
  }

  end(chunk?: Uint8Array): void {
    if (chunk !== undefined) this.add(chunk);
    try {
      this.downstream.end(chunk);
    } finally {
      this.finish();
    }
  }

  onDrain(cb: () => void): void {
    this.downstream.onDrain(cb);
  }

  /** The body will not complete: discard what was written. Idempotent; a no-op once ended. */
  abandon(): void {
    if (!this.done) this.fail({ kind: 'failed', why: 'aborted' });
  }

  private add(chunk: Uint8Array): void {
    if (this.done || chunk.byteLength === 0) return;
    this.total += chunk.byteLength;
    if (this.total > this.maxEntrySize) {
      this.fail({ kind: 'too-large' });
      return;
    }
    this.pending.push(chunk);
    this.pendingBytes += chunk.byteLength;
    if (this.pendingBytes >= CHUNK_SIZE) this.flush(false);
  }

  /** Writes full CHUNK_SIZE rows (and the remainder when `all`). */
  private flush(all: boolean): void {
    try {
      let buf = Buffer.concat(this.pending);
      while (buf.byteLength >= CHUNK_SIZE || (all && buf.byteLength > 0)) {
        const n = Math.min(CHUNK_SIZE, buf.byteLength);
        this.store.appendChunk(this.id, this.seq++, buf.subarray(0, n));
        buf = buf.subarray(n);
      }
      this.pending = buf.byteLength > 0 ? [buf] : [];
      this.pendingBytes = buf.byteLength;
    } catch (err) {
      this.fail({ kind: 'failed', why: 'error' }, err);
    }
  }

  private finish(): void {
    if (this.done) return;
    if (this.expectedLength !== undefined && this.total !== this.expectedLength) {
      this.fail({ kind: 'failed', why: 'length-mismatch' });
      return;
    }
    this.flush(true);
    if (this.done) return;
    this.done = true;
    this.pending = [];
    let result: CommitResult;
    try {
      result = this.store.commit(this.id, this.total, Date.now());
    } catch (err) {
      this.discard();
      this.settle({ kind: 'failed', why: 'error' }, err);
      return;
    }
    this.settle(result.stored ? { kind: 'stored', result } : { kind: 'failed', why: 'purged' });
  }

  private fail(outcome: TeeOutcome, err?: unknown): void {
    if (this.done) return;
    this.done = true;
    this.pending = [];
    this.discard();
    this.settle(outcome, err);
  }

  private discard(): void {
    try {
      this.store.discard(this.id);
    } catch {
      // Left incomplete: invisible to lookups, removed as an orphan by a later commit or at start.
    }
  }
}

/** A sink that drops everything: for a background revalidation, whose response no client reads. */
export function discardingSink(): BodySink {
  return { write: () => true, end: () => {}, onDrain: (cb) => void setImmediate(cb) };
}
