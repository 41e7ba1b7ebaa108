// One request on one php-fpm connection (an "exchange"): BEGIN_REQUEST with FCGI_KEEP_CONN, PARAMS, the body as
// STDIN records with backpressure (stdin-writer.ts), then STDOUT parsed into a CGI head and body delivered to an undici-style
// handler, STDERR to a callback, END_REQUEST. A connection that dies before END_REQUEST gives onResponseError,
// never onResponseEnd. The pool (pool.ts) owns connections, limits and queueing.

import type { IncomingHttpHeaders } from 'node:http';
import type { Readable } from 'node:stream';
import type { Dispatcher } from 'undici';
import type { HeaderList } from '../shared/http-types.ts';
import { CgiHeadParser } from './cgi-response.ts';
import { describeTarget, socketError, type Connection } from './connection.ts';
import type { FastCgiController } from './controller.ts';
import { FastCgiError } from './errors.ts';
import { FCGI_REQUEST_COMPLETE, FCGI_STDERR, FCGI_STDOUT, RecordParser, beginRequestRecord, paramsRecords, type RecordEvent } from './records.ts';
import { StdinWriter } from './stdin-writer.ts';

export interface FastCgiRequest {
  /** CGI parameters (params.ts builds them). CONTENT_LENGTH is set here from contentLength, whatever they say. */
  params: Iterable<readonly [string, string]>;
  /** Request body; it must give exactly contentLength bytes (spool.ts gives a length to bodies without one). */
  body: Readable | null;
  /** Bytes of body; 0 without a body. */
  contentLength: number;
  signal?: AbortSignal;
  /** STDERR text of this request (PHP's log lines); overrides the pool's onStderr. */
  onStderr?: (text: string) => void;
}

export interface ExchangeOptions {
  /** After the request body was sent, time until the CGI head arrives (0 = no bound). */
  headersTimeoutMs: number;
  /** Longest pause between response bytes while the handler is not paused (0 = no bound). */
  bodyTimeoutMs: number;
  maxHeaderSize: number;
  keepAlive: boolean;
  onStderr: (text: string) => void;
}

/** What the pool does with the connection afterwards; 'retry' = a reused connection was stale, run again. */
export type ExchangeOutcome = 'reuse' | 'close' | 'retry';

// Requests run one at a time per connection, so one id suffices (spec §3.3: ids are per connection).
const REQUEST_ID = 1;

/** The params with CONTENT_LENGTH replaced (or removed when there is no body). */
function withContentLength(params: Iterable<readonly [string, string]>, req: FastCgiRequest): Array<readonly [string, string]> {
  const out = [...params].filter(([name]) => name !== 'CONTENT_LENGTH');
  if (req.body !== null || req.contentLength > 0) out.push(['CONTENT_LENGTH', String(req.contentLength)]);
  return out;
}

/** undici's IncomingHttpHeaders shape: repeated names become arrays, set-cookie always is one. */
export function toIncomingHeaders(list: HeaderList): IncomingHttpHeaders {
  const out: Record<string, string | string[]> = {};
  for (const [name, value] of list) {
    const prev = out[name];
    if (prev === undefined) out[name] = name === 'set-cookie' ? [value] : value;
    else if (Array.isArray(prev)) prev.push(value);
    else out[name] = [prev, value];
  }
  return out;
}

export function runExchange(
  conn: Connection,
  req: FastCgiRequest,
  handler: Dispatcher.DispatchHandler,
  controller: FastCgiController,
  opts: ExchangeOptions,
  done: (outcome: ExchangeOutcome) => void,
): void {
  new Exchange(conn, req, handler, controller, opts, done).start();
}

class Exchange {
  private readonly conn: Connection;
  private readonly req: FastCgiRequest;
  private readonly handler: Dispatcher.DispatchHandler;
  private readonly controller: FastCgiController;
  private readonly opts: ExchangeOptions;
  private readonly done: (outcome: ExchangeOutcome) => void;
  private readonly parser: RecordParser;
  private readonly head: CgiHeadParser;
  private readonly reused: boolean;
  private readonly stdin: StdinWriter;
  private settled = false;
  private headDone = false;
  private responseBytes = 0;
  /** Body chunks that arrived after the handler paused (at most the rest of one socket read). */
  private pending: Buffer[] = [];
  private endPending = false;
  private afterEnd = false;
  private connectionLost = false;
  private timer: NodeJS.Timeout | undefined;
  private timerCode: 'QUICLB_FCGI_HEADERS_TIMEOUT' | 'QUICLB_FCGI_BODY_TIMEOUT' | undefined;

  constructor(
    conn: Connection,
    req: FastCgiRequest,
    handler: Dispatcher.DispatchHandler,
    controller: FastCgiController,
    opts: ExchangeOptions,
    done: (outcome: ExchangeOutcome) => void,
  ) {
    this.conn = conn;
    this.req = req;
    this.handler = handler;
    this.controller = controller;
    this.opts = opts;
    this.done = done;
    this.reused = conn.requests > 0;
    conn.requests++;
    this.parser = new RecordParser('client', (e) => this.onRecord(e));
    this.stdin = new StdinWriter(conn.socket, REQUEST_ID, req.body, req.contentLength, {
      progress: () => {
        if (!this.headDone) this.timer?.refresh();
      },
      done: () => {
        // The body is out: from now on the headers timeout counts php-fpm's own time.
        if (!this.headDone) this.arm('QUICLB_FCGI_HEADERS_TIMEOUT', this.opts.headersTimeoutMs);
      },
      fail: (err) => this.fail(err, false),
    });
    this.head = new CgiHeadParser(opts.maxHeaderSize);
  }

  start(): void {
    const { socket } = this.conn;
    if (socket.destroyed) {
      // Died between the pool's idle check and now: its 'close' has fired or will not reach these listeners.
      this.fail(new FastCgiError('ECONNRESET', `php-fpm at ${describeTarget(this.conn.target)} closed the kept connection`), true);
      return;
    }
    socket.on('data', this.onSocketData);
    socket.on('end', this.onSocketEnd);
    socket.on('close', this.onSocketEnd);
    socket.on('error', this.onSocketError);
    this.controller.attach({ abort: (reason) => this.fail(reason, false), pause: () => this.pause(), resume: () => this.resume() });
    if (this.controller.paused) socket.pause();
    else socket.resume();
    try {
      socket.cork();
      socket.write(beginRequestRecord(REQUEST_ID, this.opts.keepAlive));
      socket.write(paramsRecords(REQUEST_ID, withContentLength(this.req.params, this.req)));
      socket.uncork();
    } catch (err) {
      // paramsRecords throws only for a name or value over 2 GiB; nothing was sent.
      this.fail(err instanceof Error ? err : new Error(String(err)), false);
      return;
    }
    // Until the head arrives, progress (body bytes accepted by the socket) keeps the request alive: a php-fpm
    // with every child busy accepts the connection into its backlog but never reads.
    this.arm('QUICLB_FCGI_HEADERS_TIMEOUT', this.opts.headersTimeoutMs);
    this.stdin.start();
  }

  // ---- timers -------------------------------------------------------------------------------------

  private arm(code: 'QUICLB_FCGI_HEADERS_TIMEOUT' | 'QUICLB_FCGI_BODY_TIMEOUT', ms: number): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.timerCode = code;
    if (ms <= 0) return;
    this.timer = setTimeout(() => {
      const what = code === 'QUICLB_FCGI_HEADERS_TIMEOUT' ? 'no response headers' : 'no response bytes';
      this.fail(new FastCgiError(code, `php-fpm at ${describeTarget(this.conn.target)} sent ${what} for ${ms} ms`), false);
    }, ms);
  }

  private disarm(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  // ---- response -----------------------------------------------------------------------------------

  private readonly onSocketData = (chunk: Buffer): void => {
    if (this.settled) return;
    this.responseBytes += chunk.length;
    if (this.timer !== undefined && this.timerCode === 'QUICLB_FCGI_BODY_TIMEOUT') this.timer.refresh();
    try {
      this.parser.push(chunk);
    } catch (err) {
      this.fail(err as Error, false);
      return;
    }
    // END_REQUEST completes only after the whole chunk was parsed, so that bytes behind it are seen first.
    if (this.endPending && !this.controller.paused) this.complete();
  };

  private onRecord(e: RecordEvent): void {
    if (this.settled) return;
    if (this.endPending) {
      // php-fpm sends nothing after END_REQUEST; a connection that does is not trusted with another request.
      this.afterEnd = true;
      return;
    }
    if (e.requestId !== REQUEST_ID) {
      this.fail(new FastCgiError('QUICLB_FCGI_PROTOCOL', `malformed FastCGI record stream: request id ${e.requestId}, expected ${REQUEST_ID}`), false);
      return;
    }
    if (e.kind === 'stream' && e.type === FCGI_STDOUT) this.onStdout(e.data);
    else if (e.kind === 'stream' && e.type === FCGI_STDERR) this.onStderr(e.data);
    else if (e.kind === 'end') this.onEndRequest(e.protocolStatus);
  }

  private onStdout(data: Buffer): void {
    if (this.headDone) {
      if (data.length > 0) this.deliver(data);
      return;
    }
    try {
      const head = data.length === 0 ? this.head.finish() : this.head.push(data);
      if (head === undefined) return;
      this.headDone = true;
      this.arm('QUICLB_FCGI_BODY_TIMEOUT', this.controller.paused ? 0 : this.opts.bodyTimeoutMs);
      this.controller.rawHeaders = head.headers.flat();
      if (!this.call(() => this.handler.onResponseStart?.(this.controller, head.status, toIncomingHeaders(head.headers), head.statusMessage))) return;
      if (head.body.length > 0) this.deliver(head.body);
    } catch (err) {
      this.fail(err as Error, false);
    }
  }

  private onStderr(data: Buffer): void {
    if (data.length === 0) return;
    const text = data.toString('utf8');
    try {
      (this.req.onStderr ?? this.opts.onStderr)(text);
    } catch {
      // A logging callback must not break the request.
    }
  }

  private onEndRequest(protocolStatus: number): void {
    if (protocolStatus !== FCGI_REQUEST_COMPLETE) {
      // Spec §5.5: CANT_MPX_CONN (1), OVERLOADED (2), UNKNOWN_ROLE (3): the request was not served.
      this.fail(new FastCgiError('QUICLB_FCGI_REJECTED', `php-fpm at ${describeTarget(this.conn.target)} rejected the request (protocolStatus ${protocolStatus})`), false);
      return;
    }
    if (!this.headDone) {
      this.fail(new FastCgiError('QUICLB_FCGI_BAD_HEADER', 'php-fpm ended the request without a CGI header block'), false);
      return;
    }
    this.endPending = true;
  }

  private deliver(data: Buffer): void {
    if (this.controller.paused) {
      this.pending.push(data);
      return;
    }
    this.call(() => this.handler.onResponseData?.(this.controller, data));
  }

  private pause(): void {
    this.conn.socket.pause();
    if (this.headDone) this.arm('QUICLB_FCGI_BODY_TIMEOUT', 0);
  }

  private resume(): void {
    if (this.settled) return;
    while (this.pending.length > 0 && !this.controller.paused && !this.settled) {
      const data = this.pending.shift() as Buffer;
      this.call(() => this.handler.onResponseData?.(this.controller, data));
    }
    if (this.controller.paused || this.settled) return;
    if (this.endPending) {
      this.complete();
      return;
    }
    if (this.headDone) this.arm('QUICLB_FCGI_BODY_TIMEOUT', this.opts.bodyTimeoutMs);
    this.conn.socket.resume();
  }

  /** Runs a handler callback; a throw aborts the request with that error. False once the request settled. */
  private call(fn: () => void): boolean {
    try {
      fn();
    } catch (err) {
      this.fail(err instanceof Error ? err : new Error(String(err)), false);
    }
    return !this.settled;
  }

  // ---- endings ------------------------------------------------------------------------------------

  private readonly onSocketEnd = (): void => {
    if (this.settled) return;
    if (this.endPending) {
      // END_REQUEST arrived (the handler is paused before taking the last bytes): the response is whole,
      // only the connection is gone (a child that exits after pm.max_requests closes right after END).
      this.connectionLost = true;
      return;
    }
    const err = new FastCgiError('ECONNRESET', `php-fpm at ${describeTarget(this.conn.target)} closed the connection before END_REQUEST`);
    this.fail(err, true);
  };

  private readonly onSocketError = (err: Error): void => {
    if (this.settled) return;
    if (this.endPending) this.connectionLost = true;
    else this.fail(socketError(err, this.conn.target, 'during the request'), true);
  };

  private cleanup(): void {
    this.settled = true;
    this.disarm();
    this.stdin.stop();
    const { socket } = this.conn;
    socket.removeListener('data', this.onSocketData);
    socket.removeListener('end', this.onSocketEnd);
    socket.removeListener('close', this.onSocketEnd);
    socket.removeListener('error', this.onSocketError);
    this.controller.attach(undefined);
    this.pending = [];
  }

  private complete(): void {
    if (this.settled) return;
    // Reusable only when both streams finished cleanly: php-fpm may end a request before reading all of STDIN.
    const reusable = this.opts.keepAlive && this.stdin.finished && !this.afterEnd && !this.connectionLost && this.parser.atBoundary && !this.conn.socket.destroyed;
    this.cleanup();
    this.done(reusable ? 'reuse' : 'close');
    try {
      this.handler.onResponseEnd?.(this.controller, {});
    } catch {
      // The response is complete; a throwing handler has nothing left to abort.
    }
  }

  /** `socketLevel`: the connection broke under us (a stale kept connection may be retried once). */
  private fail(err: Error, socketLevel: boolean): void {
    if (this.settled) return;
    this.cleanup();
    this.conn.socket.destroy();
    // A kept connection php-fpm closed while idle fails at once with nothing received; a request whose body
    // was never read is safe to run again on a fresh connection (undici retries such requests the same way).
    if (socketLevel && this.reused && this.responseBytes === 0 && !this.stdin.touched && this.req.body === null) {
      this.done('retry');
      return;
    }
    this.done('close');
    try {
      this.handler.onResponseError?.(this.controller, err);
    } catch {
      // Nothing more can be done for this request; the pool carries on.
    }
  }
}
