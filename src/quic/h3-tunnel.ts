// The client side of a WebSocket over HTTP/3 (RFC 9220): the request stream after our 200, as the Duplex
// the proxy pipes to the backend. Both ways the WebSocket bytes ride in DATA frames (RFC 9220 §3, RFC 8441
// §5). Reading: the frontend pushes the client's DATA payloads here and stops reading the QUIC stream while
// this buffer is full (quiche's flow control then holds the client back); _read() asks it to go on.
// Writing: each chunk becomes a DATA frame on the stream (H3RequestStream.write), and the write completes
// once the stream's queue is short again; the end of the tunnel is the stream's FIN.
import { Duplex } from 'node:stream';
import { BODY_HIGH_WATER } from './h3-request-body.ts';

/** What the tunnel needs from its request stream (H3RequestStream). */
export interface TunnelStream {
  /** The frontend forgot the stream (closed, reset, or the connection went). */
  readonly closed: boolean;
  write(chunk: Uint8Array): boolean;
  end(): void;
  onDrain(cb: () => void): void;
  /** The tunnel wants more of the client's bytes: resume reading the stream. */
  bodyWanted(): void;
  /** Resets the stream (RFC 9114 §4.1.1: H3_INTERNAL_ERROR): the tunnel broke. */
  abort(reason?: Error): void;
}

export class H3TunnelStreamGone extends Error {
  readonly code = 'QUICLB_H3_TUNNEL_GONE';
  constructor() {
    super('the HTTP/3 stream of this WebSocket is gone');
    this.name = 'H3TunnelStreamGone';
  }
}

export class H3Tunnel extends Duplex {
  private readonly stream: TunnelStream;

  constructor(stream: TunnelStream) {
    super({ readableHighWaterMark: BODY_HIGH_WATER, writableHighWaterMark: BODY_HIGH_WATER });
    this.stream = stream;
  }

  _read(): void {
    this.stream.bodyWanted();
  }

  _write(chunk: Buffer, _encoding: BufferEncoding, cb: (err?: Error | null) => void): void {
    const s = this.stream;
    if (s.closed) {
      cb(new H3TunnelStreamGone());
      return;
    }
    if (s.write(chunk)) cb();
    else s.onDrain(() => cb());
  }

  _final(cb: (err?: Error | null) => void): void {
    this.stream.end();
    cb();
  }

  /**
   * Destroyed by the proxy before our side ended (the backend broke off): the client must see the stream
   * reset, not ended. Destroyed by the frontend (the client went away, or the stream is done), nothing is
   * left to do. The error reaches 'error' listeners only, as RequestBody does.
   */
  _destroy(err: Error | null, cb: (error?: Error | null) => void): void {
    if (!this.writableFinished && !this.stream.closed) this.stream.abort(err ?? undefined);
    cb(err !== null && this.listenerCount('error') > 0 ? err : null);
  }
}
