// The boundary between the frontends (HTTP/1.1 and HTTP/2 in src/tcp, HTTP/3 in src/quic) and the proxy
// (and the admin endpoints). Every frontend turns a client request into a FrontRequest and gives a FrontResponse.
import type { Readable, Writable } from 'node:stream';

export type Protocol = 'HTTP/1.1' | 'HTTP/2' | 'HTTP/3';

/** Header list with lowercase names, in arrival order, pseudo-headers removed. */
export type HeaderList = Array<[string, string]>;

export interface FrontRequest {
  protocol: Protocol;
  method: string;
  scheme: 'http' | 'https';
  /** host[:port] from :authority or Host. */
  authority: string;
  /** origin-form target including the query string. */
  path: string;
  headers: HeaderList;
  /** null when the request has no body (no content-length and no DATA/chunks announced). */
  body: Readable | null;
  remoteAddress: string;
  remotePort: number;
  localPort: number;
  /** Stable per client connection: for QUIC it survives migration. */
  connectionKey: string;
  /** Index of the shard that serves the request. */
  shard: number;
}

export interface FrontResponse {
  /** Send the status line and headers; returns the body sink. Call once. Headers use lowercase names. */
  respond(status: number, headers: HeaderList): Writable;
  /** Reset the client stream (HTTP/2 RST_STREAM, HTTP/3 H3_INTERNAL_ERROR, HTTP/1.1 close). */
  abort(reason?: Error): void;
  /** True once headers have been sent. */
  readonly headersSent: boolean;
  /** Fires when the client goes away before the response finished. */
  onClientAbort(cb: () => void): void;
}

/** What a frontend calls for every request. */
export type RequestHandler = (req: FrontRequest, res: FrontResponse) => void;
