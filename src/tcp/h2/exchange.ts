// One HTTP/2 request/response exchange: the FrontResponse and its BodySink over a ServerHttp2Stream of
// node:http2's core API, and the request body. Nothing here throws to its caller: node's refusals of a
// header block become a 502 (or a reset once headers went out), and every callback the pipeline hands in
// runs inside a try/catch.
//
// The stream's events reach the exchange through functions shared by all streams (the exchange hangs off
// the stream), not closures per request.
import http2 from 'node:http2';
import type { ServerHttp2Stream } from 'node:http2';
import { addAbortSignal } from 'node:stream';
import type { Duplex } from 'node:stream';
import type { Logger } from '../../shared/logger.ts';
import type { BodySink, FrontResponse, HeaderList } from '../../shared/http-types.ts';
import { H2RequestBody } from './request-body.ts';
import type { RequestBodyOwner } from './request-body.ts';
import { PauseTimer } from './pause-timer.ts';
import type { PauseOwner } from './pause-timer.ts';
import type { RequestHead } from './request-head.ts';
import { toNodeHeaders } from './response-headers.ts';
import { clientResetError, connectionClosedError, readTimeoutError, streamResetError, writeTimeoutError } from './errors.ts';

const { NGHTTP2_NO_ERROR, NGHTTP2_CANCEL, NGHTTP2_INTERNAL_ERROR, NGHTTP2_REFUSED_STREAM } = http2.constants;

/** What an exchange needs from its connection. */
export interface ExchangeOwner {
  readonly logger: Logger;
  readonly readTimeoutMs: number;
  readonly writeTimeoutMs: number;
  /**
   * True once the connection as a whole is going away (socket closed, session destroyed): its streams
   * closing then are not client resets.
   */
  readonly closing: boolean;
  /** The client reset a stream whose response had not finished (RST_STREAM). */
  onClientReset(): void;
  /**
   * The client went quiet where it should not (an upload paused, a response waits for it, a stream timed
   * out): check that the connection's transport still takes bytes.
   */
  probe(): void;
  /** The stream is closed and forgotten. */
  onStreamClosed(ex: H2Exchange): void;
}

/** node's ServerHttp2Stream has `headRequest` (true for HEAD); @types/node does not list it. */
type StreamWithHead = ServerHttp2Stream & { readonly headRequest: boolean };

const EXCHANGE = Symbol('quiclb.h2.exchange');
type TaggedStream = ServerHttp2Stream & { [EXCHANGE]?: H2Exchange };

function onStreamError(this: TaggedStream, err: Error): void {
  // Reset streams and writes after a reset end up here; the exchange learns of them by 'aborted'/'close'.
  this[EXCHANGE]?.owner.logger.debug({ err: err.message }, 'HTTP/2 stream error');
}
function onStreamAborted(this: TaggedStream): void {
  guarded(this[EXCHANGE], 'onAborted');
}
function onStreamFinish(this: TaggedStream): void {
  guarded(this[EXCHANGE], 'onFinish');
}
function onStreamDrained(this: TaggedStream): void {
  guarded(this[EXCHANGE], 'onDrained');
}
function onStreamClose(this: TaggedStream): void {
  const ex = this[EXCHANGE];
  this[EXCHANGE] = undefined;
  guarded(ex, 'onClose');
}

/** Runs one of the exchange's event handlers; a bug in one stream's handling must not reach the shard. */
function guarded(ex: H2Exchange | undefined, handler: 'onAborted' | 'onFinish' | 'onDrained' | 'onClose' | 'onWriteStalled' | 'onWriteTimeout'): void {
  if (ex === undefined) return;
  try {
    ex[handler]();
  } catch (err) {
    ex.owner.logger.error({ err, handler }, 'HTTP/2 stream handler threw');
  }
}

export class H2Exchange implements FrontResponse, BodySink, RequestBodyOwner, PauseOwner {
  readonly stream: ServerHttp2Stream;
  readonly owner: ExchangeOwner;
  /** null when HEADERS carried END_STREAM, and for a WebSocket (the stream itself becomes the tunnel). */
  body: H2RequestBody | null;
  head: RequestHead | undefined;
  headersSent = false;
  /** The stream's writable side finished (node ends it at once for HEAD, before any response). */
  private streamFinished = false;
  /** The client went away (or a timeout dropped it): onClientAbort callbacks ran. */
  private gone = false;
  /** quiclb reset the stream itself: its close is not a client reset. */
  private resetByUs = false;
  /** end() was called on the HTTP/2 stream. */
  private ended = false;
  /** Body bytes are dropped: HEAD, 204, 205, 304, or a 502 sent in place of an unsendable response. */
  private dropBody = false;
  private abortCbs: Array<() => void> | undefined;
  /** Runs while a response write waits for the client (made at the first wait). */
  private writePause: PauseTimer | undefined;
  private waitingDrain = false;
  /** A WebSocket handshake (extended CONNECT): the client keeps its side open for the tunnel. */
  private websocket = false;
  /** upgrade() made the stream a WebSocket tunnel: its end is the tunnel's business, never a client reset. */
  private tunnel = false;

  constructor(stream: ServerHttp2Stream, owner: ExchangeOwner) {
    this.stream = stream;
    this.owner = owner;
    this.body = stream.endAfterHeaders ? null : new H2RequestBody(stream, this, owner.readTimeoutMs);
    this.streamFinished = stream.writableFinished;
    (stream as TaggedStream)[EXCHANGE] = this;
    stream.on('error', onStreamError);
    stream.once('aborted', onStreamAborted);
    stream.once('finish', onStreamFinish);
    stream.once('close', onStreamClose);
  }

  get finished(): boolean {
    return this.headersSent && this.ended && this.streamFinished;
  }

  /** True when the stream can no longer carry a response (reset by either side, or its connection gone). */
  get isGone(): boolean {
    return this.gone || this.resetByUs || this.stream.closed || this.stream.destroyed;
  }

  // ---- FrontResponse ----

  respond(status: number, headers: HeaderList): BodySink {
    if (this.headersSent) {
      this.owner.logger.warn({ status }, 'respond() called twice on one HTTP/2 stream; the second response is dropped');
      return DISCARD;
    }
    this.headersSent = true;
    const s = this.stream;
    if (this.isGone) {
      this.dropBody = true;
      return this;
    }
    // node ends the stream itself for these (RFC 9110 §6.4.1; HEAD §9.3.2).
    this.dropBody = status === 204 || status === 205 || status === 304 || (s as StreamWithHead).headRequest;
    try {
      s.respond(toNodeHeaders(status, headers), { endStream: this.dropBody });
      if (this.dropBody) this.ended = true;
    } catch (err) {
      // node refused the header block (a field name or value it rejects, a status out of range).
      this.owner.logger.warn({ err, status }, 'HTTP/2 refused the response headers; answering 502');
      this.dropBody = true;
      this.answerBadGateway();
    }
    return this;
  }

  inform(status: number, headers?: HeaderList): void {
    // RFC 9113 §8.1: interim responses only before the final one; 101 does not exist in HTTP/2 (§8.6).
    if (this.headersSent || this.isGone || status < 100 || status > 199 || status === 101) return;
    try {
      this.stream.additionalHeaders(headers ? toNodeHeaders(status, headers) : { ':status': status });
    } catch (err) {
      this.owner.logger.debug({ err, status }, 'HTTP/2 interim response not sent');
    }
  }

  /**
   * A WebSocket handshake (extended CONNECT, RFC 8441 §5): 200 with the backend's fields, and the stream
   * itself, whose DATA frames carry the WebSocket frames both ways from now on, goes to the caller.
   */
  upgrade(headers: HeaderList): Duplex {
    if (this.headersSent) throw new Error('upgrade() after respond() on an HTTP/2 stream');
    if (this.isGone) throw streamResetError();
    this.headersSent = true;
    this.tunnel = true;
    try {
      this.stream.respond(toNodeHeaders(200, headers), { endStream: false });
    } catch (err) {
      this.owner.logger.warn({ err }, 'HTTP/2 refused the WebSocket response headers; answering 502');
      this.dropBody = true;
      this.answerBadGateway();
      throw err;
    }
    return this.stream;
  }

  /** The request is a WebSocket handshake: no request body, the stream is the tunnel once accepted. */
  prepareTunnel(): void {
    this.websocket = true;
    this.body?.destroy();
    this.body = null;
  }

  abort(): void {
    this.resetStream(NGHTTP2_INTERNAL_ERROR, streamResetError());
  }

  onClientAbort(cb: () => void): void {
    if (this.gone) process.nextTick(runCallback, cb, this.owner.logger);
    else (this.abortCbs ??= []).push(cb);
  }

  // ---- BodySink ----

  write(chunk: Uint8Array): boolean {
    if (this.dropBody || this.isGone || this.ended) return true;
    if (this.stream.write(chunk)) return true;
    // RFC 9113 §5.2: the client's flow-control window is closed (or we are ahead of the socket).
    this.armWriteTimer();
    return false;
  }

  end(chunk?: Uint8Array): void {
    if (this.ended) return;
    this.ended = true;
    if (this.dropBody || this.isGone) return;
    if (chunk === undefined) this.stream.end();
    else this.stream.end(chunk);
    // The last bytes can wait for window too; 'finish' disarms.
    if (!this.streamFinished) this.armWriteTimer();
  }

  onDrain(cb: () => void): void {
    if (this.dropBody || this.isGone || this.ended || !this.stream.writableNeedDrain) {
      process.nextTick(runCallback, cb, this.owner.logger);
    } else {
      this.stream.once('drain', () => runCallback(cb, this.owner.logger));
    }
  }

  // ---- the request side ----

  /** The request will not be dispatched (the connection is being closed for abuse): REFUSED_STREAM. */
  refuse(): void {
    this.resetStream(NGHTTP2_REFUSED_STREAM, streamResetError());
  }

  /** A small text answer from quiclb itself (a malformed or refused request). */
  answer(status: number, text: string, extra: HeaderList = []): void {
    const body = Buffer.from(`${text}\n`);
    const sink = this.respond(status, [
      ['content-type', 'text/plain; charset=utf-8'],
      ['content-length', String(body.length)],
      ['cache-control', 'no-store'],
      ...extra,
    ]);
    sink.end(body);
  }

  onReadTimeout(): void {
    const err = readTimeoutError(this.owner.readTimeoutMs);
    this.owner.logger.debug({ err: err.message }, 'HTTP/2 request body timed out');
    this.resetStream(NGHTTP2_CANCEL, err);
    this.clientGone();
    // The RST_STREAM needs a live transport to close the stream; without one the connection is closed.
    this.owner.probe();
  }

  /** The upload paused STALL_CHECK_MS: is the client's connection alive at all? */
  onStalled(): void {
    this.owner.probe();
  }

  /**
   * The connection is gone, whether or not node closes this stream (it does not when the transport died
   * under a write it never finishes): the body fails and whoever forwards the request is told.
   */
  onConnectionGone(): void {
    this.disarmWriteTimer();
    this.body?.fail(connectionClosedError());
    this.clientGone();
  }

  // ---- stream events ----

  /** node closed the stream while our response was open: a client RST_STREAM, or the connection went. */
  onAborted(): void {
    if (this.resetByUs || this.tunnel) {
      this.clientGone();
      return;
    }
    const connection = this.owner.closing;
    this.body?.fail(connection ? connectionClosedError() : clientResetError(this.stream.rstCode ?? NGHTTP2_CANCEL));
    if (!connection && !this.gone) this.owner.onClientReset();
    this.clientGone();
  }

  onFinish(): void {
    this.streamFinished = true;
    this.disarmWriteTimer();
    if (!this.headersSent) return;
    // RFC 9113 §8.1: the response is complete but the client is still sending the request body; ask it to
    // stop with RST_STREAM(NO_ERROR). Whoever still reads the body sees it cut off, not ended. (A body
    // nobody read node closes the same way by itself.)
    if (this.body && !this.body.settled && !this.stream.closed && this.stream.readableFlowing !== null) {
      this.resetStream(NGHTTP2_NO_ERROR, streamResetError());
    }
    // A refused WebSocket handshake (a normal response, complete): the client's side, held open for a
    // tunnel that will not come, is closed the same way.
    if (this.websocket && !this.tunnel && !this.stream.closed && !this.stream.readableEnded) this.resetStream(NGHTTP2_NO_ERROR, streamResetError());
  }

  onClose(): void {
    this.disarmWriteTimer();
    const s = this.stream;
    // A response that ended and closed without error went out whole even if 'finish' came second.
    if (this.ended && s.rstCode === NGHTTP2_NO_ERROR) this.streamFinished = true;
    if (this.body && !this.body.settled) {
      this.body.fail(this.resetByUs ? streamResetError() : this.owner.closing ? connectionClosedError() : clientResetError(s.rstCode ?? NGHTTP2_CANCEL));
    }
    if (!this.finished && !this.gone) {
      // Closed before the response finished without an 'aborted' first: reset after end() was called.
      if (!this.resetByUs && !this.tunnel && !this.owner.closing && s.rstCode !== NGHTTP2_NO_ERROR) this.owner.onClientReset();
      this.clientGone();
    }
    this.owner.onStreamClosed(this);
  }

  // ---- internals ----

  private answerBadGateway(): void {
    const text = Buffer.from('502 Bad Gateway: the backend response cannot be sent over HTTP/2 (invalid header fields).\n');
    try {
      this.stream.respond(
        { ':status': 502, 'content-type': 'text/plain; charset=utf-8', 'content-length': text.length, 'cache-control': 'no-store' },
        { endStream: false },
      );
      this.ended = true;
      this.stream.end(text);
    } catch (err) {
      this.owner.logger.warn({ err }, 'HTTP/2 502 not sent either; resetting the stream');
      this.resetStream(NGHTTP2_INTERNAL_ERROR, streamResetError());
    }
  }

  private resetStream(code: number, reason: Error): void {
    if (this.resetByUs) return;
    this.resetByUs = true;
    this.disarmWriteTimer();
    this.body?.fail(reason);
    const s = this.stream;
    if (s.closed || s.destroyed) return;
    try {
      if (s.headersSent && !s.writableEnded) {
        // A response in progress. node's stream.close(code) ends the writable side first, which sends
        // END_STREAM before the RST_STREAM: the client would take a cut-off body without content-length
        // as complete (measured). destroy() resets without END_STREAM: INTERNAL_ERROR for an Error, CANCEL
        // for node's AbortError, which a stream gets from an aborted addAbortSignal.
        if (code === NGHTTP2_CANCEL) {
          const ac = new AbortController();
          addAbortSignal(ac.signal, s);
          ac.abort();
        } else s.destroy(reason);
      } else s.close(code);
    } catch (err) {
      this.owner.logger.debug({ err }, 'HTTP/2 stream reset failed');
    }
  }

  private clientGone(): void {
    if (this.gone) return;
    this.gone = true;
    this.disarmWriteTimer();
    const cbs = this.abortCbs;
    this.abortCbs = undefined;
    if (cbs) for (const cb of cbs) runCallback(cb, this.owner.logger);
  }

  private armWriteTimer(): void {
    if (!this.waitingDrain && !this.ended) {
      this.waitingDrain = true;
      this.stream.once('drain', onStreamDrained);
    }
    (this.writePause ??= new PauseTimer(this.owner.writeTimeoutMs, this)).restart();
  }

  private disarmWriteTimer(): void {
    this.writePause?.stop();
  }

  onDrained(): void {
    this.waitingDrain = false;
    if (!this.ended) this.disarmWriteTimer();
  }

  // ---- PauseOwner (the response side) ----

  onPauseStalled(): void {
    guarded(this, 'onWriteStalled');
  }

  onPauseTimeout(): void {
    guarded(this, 'onWriteTimeout');
  }

  /** The client has taken nothing for STALL_CHECK_MS: is its connection alive at all? */
  onWriteStalled(): void {
    if (!this.streamFinished && !this.gone) this.owner.probe();
  }

  onWriteTimeout(): void {
    if (this.streamFinished || this.gone) return;
    const err = writeTimeoutError(this.owner.writeTimeoutMs);
    this.owner.logger.debug({ err: err.message }, 'HTTP/2 response write timed out');
    this.resetStream(NGHTTP2_CANCEL, err);
    this.clientGone();
    this.owner.probe();
  }
}

function runCallback(cb: () => void, logger: Logger): void {
  try {
    cb();
  } catch (err) {
    logger.error({ err }, 'an HTTP/2 stream callback threw');
  }
}

const DISCARD: BodySink = {
  write: () => true,
  end: () => undefined,
  onDrain: (cb) => process.nextTick(cb),
};
