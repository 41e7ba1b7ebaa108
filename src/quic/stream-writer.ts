// Bytes waiting to enter one quiche stream. quiche accepts only what flow control and its send buffer
// allow (streamSend returns fewer octets, or Done); the rest waits here until the peer opens the
// window. The owner bounds `queued` (a Writable's callback is held while it is above the limit).
import type { QuicheConnection } from './quiche.ts';
import { quicErrorCode, toQuicError, type QuicError } from './errors.ts';

export type DrainResult = 'done' | 'blocked' | 'failed';

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
}

const EMPTY = new Uint8Array(0);
