// The request body of one HTTP/3 request as the pipeline reads it. Backpressure: when the buffer is full the
// frontend stops reading the QUIC stream (quiche's flow control then slows the client, RFC 9000 §4), and
// _read() asks it to resume.
import { Readable } from 'node:stream';

/** Request body bytes buffered before the frontend stops reading the stream. */
export const BODY_HIGH_WATER = 64 * 1024;

export interface BodySource {
  /** The consumer wants more bytes. */
  bodyWanted(): void;
}

export class RequestBody extends Readable {
  private readonly source: BodySource;

  constructor(source: BodySource) {
    super({ highWaterMark: BODY_HIGH_WATER });
    this.source = source;
  }

  _read(): void {
    this.source.bodyWanted();
  }

  /**
   * A body the client abandoned is destroyed with an error (never ended: a truncated upload must not look
   * complete). As node:http's IncomingMessage does, the error is emitted only to a consumer that listens
   * for one; one that does not sees 'close' without 'end', and the shard does not crash on an unhandled
   * 'error'.
   */
  _destroy(err: Error | null, cb: (error?: Error | null) => void): void {
    cb(err !== null && this.listenerCount('error') > 0 ? err : null);
  }
}
