// The request body as FCGI_STDIN records (spec §5.3) with backpressure: the body is paused while the socket's
// buffer is full and resumed on 'drain'. The body must give exactly contentLength bytes, since php-fpm reads
// CONTENT_LENGTH bytes; a shorter, longer or failed body is an error and the connection must then close, so
// that php-fpm never sees a truncated body as complete.

import type { Socket } from 'node:net';
import type { Readable } from 'node:stream';
import { FastCgiError } from './errors.ts';
import { FCGI_STDIN, endOfStreamRecord, streamRecordParts } from './records.ts';

export interface StdinEvents {
  /** Body bytes were accepted by the socket (keeps a stall timer from firing). */
  progress(): void;
  /** The whole body and the closing empty STDIN record were written. */
  done(): void;
  fail(err: FastCgiError): void;
}

export class StdinWriter {
  private readonly socket: Socket;
  private readonly body: Readable | null;
  private readonly contentLength: number;
  private readonly requestId: number;
  private readonly events: StdinEvents;
  private bytes = 0;
  private stopped = false;
  /** Some body bytes were read (the body cannot be replayed any more). */
  touched = false;
  finished = false;

  constructor(socket: Socket, requestId: number, body: Readable | null, contentLength: number, events: StdinEvents) {
    this.socket = socket;
    this.requestId = requestId;
    this.body = body;
    this.contentLength = contentLength;
    this.events = events;
  }

  start(): void {
    const body = this.body;
    if (body === null) {
      this.finish();
      return;
    }
    if (body.destroyed || body.readableEnded) {
      this.fail('the request body stream was already consumed or destroyed');
      return;
    }
    body.on('data', this.onData);
    body.on('end', this.onEnd);
    body.on('error', this.onError);
    body.on('close', this.onClose);
  }

  /** Detaches from the body, which stays paused: the caller owns it, to discard or destroy. Idempotent. */
  stop(): void {
    this.stopped = true;
    this.socket.removeListener('drain', this.onDrain);
    const body = this.body;
    if (body === null) return;
    body.removeListener('data', this.onData);
    body.removeListener('end', this.onEnd);
    body.removeListener('error', this.onError);
    body.removeListener('close', this.onClose);
    if (!body.readableEnded) body.pause();
  }

  private fail(message: string, cause?: unknown): void {
    if (this.stopped) return;
    this.stop();
    this.events.fail(new FastCgiError('QUICLB_FCGI_REQUEST_BODY', message, cause === undefined ? undefined : { cause }));
  }

  private finish(): void {
    this.stop();
    this.finished = true;
    this.socket.write(endOfStreamRecord(FCGI_STDIN, this.requestId));
    this.events.done();
  }

  private readonly onData = (chunk: Buffer | string): void => {
    if (this.stopped) return;
    const data = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
    this.touched = true;
    this.bytes += data.length;
    if (this.bytes > this.contentLength) {
      this.fail(`the request body is longer than its contentLength ${this.contentLength}`);
      return;
    }
    this.socket.cork();
    let ok = true;
    for (const part of streamRecordParts(FCGI_STDIN, this.requestId, data)) ok = this.socket.write(part);
    this.socket.uncork();
    this.events.progress();
    if (!ok) {
      this.body?.pause();
      this.socket.once('drain', this.onDrain);
    }
  };

  private readonly onDrain = (): void => {
    if (this.stopped) return;
    this.events.progress();
    this.body?.resume();
  };

  private readonly onEnd = (): void => {
    if (this.stopped) return;
    if (this.bytes !== this.contentLength) this.fail(`the request body ended after ${this.bytes} of ${this.contentLength} bytes`);
    else this.finish();
  };

  private readonly onError = (err: Error): void => this.fail(`the request body failed: ${err.message}`, err);

  private readonly onClose = (): void => {
    if (!(this.body?.readableEnded ?? true)) this.fail(`the request body was closed after ${this.bytes} of ${this.contentLength} bytes`);
  };
}
