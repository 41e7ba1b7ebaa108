// One HTTP/1.1 request/response on a connection: the FrontResponse and its BodySink in one object, writing
// straight to the socket (no ServerResponse, no stream per response). The connection (connection.ts)
// parses, queues pipelined requests and answers them in order; this file frames one response.
import type { Duplex, Readable } from 'node:stream';
import type { BodySink, FrontRequest, FrontResponse, HeaderList } from '../../shared/http-types.ts';
import { dateField, statusLine } from './response-head.ts';

/** What an exchange needs from its connection. */
export interface ExchangeHost {
  write(data: string | Uint8Array): boolean;
  cork(): void;
  onDrain(cb: () => void): void;
  /** The response is complete (keepAlive: whether the connection may carry another request). */
  exchangeDone(ex: H1Exchange, keepAlive: boolean): void;
  /** Break the connection: the client must see this response incomplete. */
  destroy(reason?: Error): void;
  /** Whether the connection is draining (every response then says `connection: close`). */
  readonly closing: boolean;
  /** Hands the socket over (after a 101): the connection stops parsing and timing it. */
  detach(): Duplex;
}

const CHUNK_END = '0\r\n\r\n';

export class H1Exchange implements FrontResponse, BodySink {
  readonly req: FrontRequest;
  /** The client allows another request after this one (HTTP/1.1 default, or 1.0 with keep-alive). */
  keepAlive: boolean;
  readonly http10: boolean;
  /** The client sent `Expect: 100-continue` and has not been answered yet. */
  expectContinue: boolean;
  /** The request body is still arriving from the socket. */
  bodyOpen: boolean;
  /** Body bytes read and dropped after the response completed (see connection.discard). */
  discarded = 0;
  private readonly conn: ExchangeHost;
  private sent = false;
  private done = false;
  private gone = false;
  private noBody = false;
  private chunked = false;
  /** Bytes still owed by a content-length response; -1 when the length is not fixed. */
  private remaining = -1;
  private abortCbs: Array<() => void> | undefined;

  constructor(conn: ExchangeHost, req: FrontRequest, keepAlive: boolean, http10: boolean, expectContinue: boolean) {
    this.conn = conn;
    this.req = req;
    this.keepAlive = keepAlive;
    this.http10 = http10;
    this.expectContinue = expectContinue;
    this.bodyOpen = req.body !== null;
  }

  get body(): Readable | null {
    return this.req.body;
  }

  get headersSent(): boolean {
    return this.sent;
  }

  get finished(): boolean {
    return this.done;
  }

  // ---- FrontResponse ----------------------------------------------------------------------------

  inform(status: number, headers?: HeaderList): void {
    if (this.sent || this.gone || this.http10) return;
    if (status === 100) {
      // RFC 9110 §10.1.1: only a client that asked for it gets 100 Continue, and only once.
      if (!this.expectContinue) return;
      this.expectContinue = false;
      this.conn.write('HTTP/1.1 100 Continue\r\n\r\n');
      return;
    }
    if (status <= 100 || status >= 200) return;
    let head = statusLine(status);
    if (headers) for (const [n, v] of headers) head += `${n}: ${v}\r\n`;
    this.conn.write(head + '\r\n');
  }

  respond(status: number, headers: HeaderList): BodySink {
    if (this.sent) throw new Error('respond() called twice on one HTTP/1.1 exchange');
    this.sent = true;
    this.expectContinue = false;
    if (this.gone) return this;
    const method = this.req.method;
    // RFC 9110 §6.4.1: no content in answers to HEAD, nor in 204 and 304.
    this.noBody = method === 'HEAD' || status === 204 || status === 304 || status < 200;
    let head = statusLine(status);
    let length = -1;
    let hasDate = false;
    for (let i = 0; i < headers.length; i++) {
      const h = headers[i];
      const name = h[0];
      // Framing belongs to this connection, not to the backend's (RFC 9112 §6, §9.6).
      switch (name) {
        case 'content-length':
          if (status === 204) continue;
          if (length >= 0) continue; // a repeat: the first one frames the message
          length = Number(h[1]);
          if (!Number.isSafeInteger(length) || length < 0) {
            length = -1;
            continue;
          }
          break;
        case 'transfer-encoding':
        case 'connection':
        case 'keep-alive':
          continue;
        case 'date':
          hasDate = true;
          break;
      }
      head += `${name}: ${h[1]}\r\n`;
    }
    if (!hasDate) head += dateField();
    if (!this.noBody) {
      if (length >= 0) this.remaining = length;
      else if (this.http10) this.keepAlive = false; // close-delimited (RFC 9112 §6.3 rule 8)
      else {
        this.chunked = true;
        head += 'transfer-encoding: chunked\r\n';
      }
    }
    if (this.conn.closing) this.keepAlive = false;
    if (!this.keepAlive) head += 'connection: close\r\n';
    else if (this.http10) head += 'connection: keep-alive\r\n';
    this.conn.cork();
    this.conn.write(head + '\r\n');
    return this;
  }

  upgrade(headers: HeaderList): Duplex {
    if (this.sent || this.req.upgrade !== 'websocket') throw new Error('upgrade() is only for a WebSocket request, before respond()');
    this.sent = true;
    this.done = true;
    // RFC 6455 §4.2.2: 101 with Upgrade and Connection; the backend's Sec-WebSocket-* fields pass through.
    let head = 'HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: Upgrade\r\n';
    for (const [name, value] of headers) {
      if (name === 'upgrade' || name === 'connection' || name === 'content-length' || name === 'transfer-encoding') continue;
      head += `${name}: ${value}\r\n`;
    }
    this.conn.write(head + '\r\n');
    return this.conn.detach();
  }

  abort(reason?: Error): void {
    if (this.done) return;
    this.done = true;
    this.conn.destroy(reason);
  }

  onClientAbort(cb: () => void): void {
    if (this.done) return;
    if (this.gone) {
      process.nextTick(cb);
      return;
    }
    (this.abortCbs ??= []).push(cb);
  }

  // ---- BodySink ---------------------------------------------------------------------------------

  write(chunk: Uint8Array): boolean {
    if (this.done || this.gone || this.noBody || chunk.length === 0) return true;
    if (this.chunked) {
      this.conn.cork();
      this.conn.write(`${chunk.length.toString(16)}\r\n`);
      this.conn.write(chunk);
      return this.conn.write('\r\n');
    }
    if (this.remaining >= 0) {
      if (chunk.length > this.remaining) {
        // More bytes than the backend's content-length: the rest cannot be framed; the connection ends after.
        chunk = chunk.subarray(0, this.remaining);
        this.keepAlive = false;
      }
      this.remaining -= chunk.length;
      if (chunk.length === 0) return true;
    }
    return this.conn.write(chunk);
  }

  end(chunk?: Uint8Array): void {
    if (this.done) return;
    if (chunk !== undefined && chunk.length > 0) this.write(chunk);
    if (this.gone) return;
    this.done = true;
    if (!this.noBody) {
      if (this.chunked) this.conn.write(CHUNK_END);
      else if (this.remaining > 0) {
        // Fewer bytes than announced: the client must see the response as broken, not as complete.
        this.conn.destroy(new Error('response ended before its content-length'));
        return;
      }
    }
    this.conn.exchangeDone(this, this.keepAlive);
  }

  onDrain(cb: () => void): void {
    this.conn.onDrain(cb);
  }

  // ---- called by the connection -----------------------------------------------------------------

  /** The connection closed before this response finished. */
  clientGone(err: Error): void {
    if (this.done || this.gone) return;
    this.gone = true;
    const body = this.req.body;
    if (body !== null && this.bodyOpen) {
      this.bodyOpen = false;
      body.destroy(err);
    }
    const cbs = this.abortCbs;
    this.abortCbs = undefined;
    if (cbs) for (const cb of cbs) cb();
  }
}
