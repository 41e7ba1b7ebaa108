// The boundary between the frontends (HTTP/1.1 and HTTP/2 in src/tcp, HTTP/3 in src/quic) and the request
// pipeline (src/pipeline, which runs the admin endpoints, the proxy and the other phases). Every frontend
// turns a client request into a FrontRequest and gives a FrontResponse; nothing past this boundary knows
// which protocol carried the request.
//
// What a frontend owns (the same on HTTP/1.1, HTTP/2 and HTTP/3, from one FrontendLimits):
//   - framing and protocol errors: malformed requests never reach the pipeline (400/431/505 on HTTP/1.1,
//     stream errors on HTTP/2 and HTTP/3);
//   - server.maxHeaderSize over the decoded header section (431), server.readTimeout (header section and
//     body inactivity), server.writeTimeout (a response the client stops reading), server.idleTimeout,
//     and the abuse limits (HTTP/2 and HTTP/3 stream resets);
//   - normalising the target: `authority` is the one host the request is for (absolute-form's authority on
//     HTTP/1.1, `:authority` on HTTP/2 and HTTP/3, else Host) and `headers` hold exactly one matching `host`
//     field whenever `authority` is non-empty.
// What the pipeline owns: semantic checks shared by all protocols (src/pipeline/phases/validate.ts).
import type { Duplex, Readable } from 'node:stream';

export type Protocol = 'HTTP/1.1' | 'HTTP/2' | 'HTTP/3';

/** Header list with lowercase names, in arrival order, pseudo-headers removed. */
export type HeaderList = Array<[string, string]>;

export interface FrontRequest {
  protocol: Protocol;
  method: string;
  scheme: 'http' | 'https';
  /** host[:port] the request is for (see above); '' only when the client sent none (HTTP/1.0). */
  authority: string;
  /** origin-form target including the query string, or '*' for `OPTIONS *`. */
  path: string;
  headers: HeaderList;
  /**
   * null when the request has no body (no content-length/transfer-encoding, or HEADERS with END_STREAM).
   * The stream errors (never ends cleanly) when the client aborts the upload: a truncated body must
   * never look complete to the backend.
   */
  body: Readable | null;
  /** Normalised (no ::ffff: prefix on IPv4 clients). */
  remoteAddress: string;
  remotePort: number;
  localPort: number;
  /** Stable per client connection: for QUIC it survives migration. */
  connectionKey: string;
  /** Index of the shard that serves the request. */
  shard: number;
  /**
   * 'websocket' for a WebSocket opening handshake: HTTP/1.1 `Upgrade: websocket` (RFC 6455 §4) or an
   * extended CONNECT with `:protocol websocket` on HTTP/2 (RFC 8441) or HTTP/3 (RFC 9220). The method is
   * then GET whatever the protocol carried. Other upgrades are not offered to the pipeline.
   */
  upgrade?: 'websocket';
}

/**
 * Where response body bytes go. Cheaper than a stream.Writable per response: the HTTP/1.1 frontend writes
 * straight to the socket. write() returns false when the client is slower than the backend; the caller
 * then waits for onDrain() before writing more (it may still call end()).
 */
export interface BodySink {
  write(chunk: Uint8Array): boolean;
  /** Finishes the response (after the optional last chunk). */
  end(chunk?: Uint8Array): void;
  /** `cb` runs once when the sink wants more (at once, on a later tick, if it already does). */
  onDrain(cb: () => void): void;
}

export interface FrontResponse {
  /**
   * Sends the status line and headers (lowercase names; hop-by-hop fields are the caller's to remove) and
   * returns the body sink. Call once. The frontend frames the body: content-length when given, else
   * chunked (HTTP/1.1) or DATA until FIN; no body bytes go out for HEAD, 204 and 304.
   */
  respond(status: number, headers: HeaderList): BodySink;
  /** An interim response (100 Continue, 103 Early Hints) before respond(). */
  inform(status: number, headers?: HeaderList): void;
  /**
   * Breaks the response so the client sees it incomplete: HTTP/2 RST_STREAM, HTTP/3 H3_INTERNAL_ERROR,
   * HTTP/1.1 connection closed without the final chunk or before content-length bytes.
   */
  abort(reason?: Error): void;
  /** True once respond() was called. */
  readonly headersSent: boolean;
  /** True once the response went out completely (end() flushed to the transport's buffers). */
  readonly finished: boolean;
  /**
   * `cb` runs once if the client goes away (connection closed, stream reset, write timeout) before the
   * response finished; at once (next tick) if that already happened.
   */
  onClientAbort(cb: () => void): void;
  /**
   * Accepts a WebSocket request (FrontRequest.upgrade): HTTP/1.1 answers 101 with `headers` plus its own
   * Upgrade/Connection fields, HTTP/2 and HTTP/3 answer 200 without the fields their protocol forbids.
   * Returns the client's byte stream (WebSocket frames both ways), now owned by the caller. Only for
   * upgrade requests, before respond().
   */
  upgrade?(headers: HeaderList): Duplex;
}

/** What a frontend calls for every request. It must not throw; the pipeline catches its own errors. */
export type RequestHandler = (req: FrontRequest, res: FrontResponse) => void;
