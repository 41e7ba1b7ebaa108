// Bytes waiting to enter one quiche stream. quiche accepts only what flow control and its send buffer
// allow (streamSend returns fewer octets, or Done); the rest waits here until the peer opens the
// window. The owner bounds `queued` (write() asks the caller to wait while it is above the limit).
//
// Small chunks queued in one turn (a HEADERS frame, a DATA frame header, a short body) are copied into
// one buffer before they go to quiche, so a small response costs one streamSend call (a native call
// each) instead of three or four; chunks above COALESCE_MAX go as they are.
import type { QuicheConnection } from './quiche.ts';
import { quicErrorCode, toQuicError, type QuicError } from './errors.ts';

export type DrainResult = 'done' | 'blocked' | 'failed';

/** Largest run of queued chunks merged into one streamSend. */
const COALESCE_MAX = 16 * 1024;

export class StreamWriter {
  readonly streamId: number;
  private readonly chunks: Uint8Array[] = [];
  private head = 0;
  queued = 0;
  private finWanted = false;
  finSent = false;
  /** Set when quiche refused the stream (peer STOP_SENDING -> QUIC_STREAM_STOPPED, stream gone, ...). */
  error: QuicError | undefined;

  constructor(streamId: number) {
    this.streamId = streamId;
  }

  /** Bytes queued here that quiche has not taken yet. */
  get hasPendingData(): boolean {
    return this.head < this.chunks.length;
  }

  get idle(): boolean {
    return this.head >= this.chunks.length && (!this.finWanted || this.finSent);
  }

  push(data: Uint8Array): void {
    if (data.length === 0) return;
    this.chunks.push(data);
    this.queued += data.length;
  }

  end(): void {
    this.finWanted = true;
  }

  /** Moves as much as quiche takes. */
  drain(conn: QuicheConnection): DrainResult {
    if (this.error) return 'failed';
    try {
      while (this.head < this.chunks.length) {
        if (this.chunks.length - this.head > 1) this.coalesce();
        const chunk = this.chunks[this.head];
        const last = this.head === this.chunks.length - 1;
        const fin = last && this.finWanted;
        const n = conn.streamSend(this.streamId, chunk, fin);
        if (n === null || (n === 0 && chunk.length > 0)) return 'blocked';
        this.queued -= n;
        if (n < chunk.length) {
          this.chunks[this.head] = chunk.subarray(n);
          return 'blocked';
        }
        this.chunks[this.head++] = EMPTY;
        if (fin) this.finSent = true;
      }
      this.chunks.length = 0;
      this.head = 0;
      if (this.finWanted && !this.finSent) {
        const n = conn.streamSend(this.streamId, EMPTY, true);
        if (n === null) return 'blocked';
        this.finSent = true;
      }
      return 'done';
    } catch (err) {
      if (quicErrorCode(err) === 'QUIC_DONE') return 'blocked';
      this.error = toQuicError(err);
      return 'failed';
    }
  }

  /** Merges the chunks at the head into one while they total at most COALESCE_MAX. */
  private coalesce(): void {
    const chunks = this.chunks;
    let end = this.head;
    let total = 0;
    while (end < chunks.length && total + chunks[end].length <= COALESCE_MAX) total += chunks[end++].length;
    if (end - this.head < 2) return;
    const merged = Buffer.allocUnsafe(total);
    let off = 0;
    for (let i = this.head; i < end; i++) {
      merged.set(chunks[i], off);
      off += chunks[i].length;
      chunks[i] = EMPTY;
    }
    this.head = end - 1;
    chunks[this.head] = merged;
  }
}

const EMPTY = new Uint8Array(0);
