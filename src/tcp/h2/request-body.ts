// The request body of one HTTP/2 stream as the Readable the pipeline gets. Two things node's stream does
// not give:
//   - it errors, never ends, when the upload is cut off: node ends the readable side cleanly when a
//     client sends RST_STREAM(NO_ERROR) or when the connection closes while the response is open (it
//     emits 'aborted' first), and a proxy that saw that end would forward a truncated body as complete
//     (a chunked request with its final chunk). RFC 9113 §8.1: only END_STREAM ends a request.
//   - server.readTimeout: a body that pauses longer than readTimeoutMs (while someone wants more of it)
//     resets the stream; a shorter pause has the connection check its transport (PauseTimer).
// It reads the HTTP/2 stream only when asked to (nothing flows before dispatch), so backpressure reaches
// the client as flow control.
import { Readable } from 'node:stream';
import type { ServerHttp2Stream } from 'node:http2';
import { PauseTimer } from './pause-timer.ts';
import type { PauseOwner } from './pause-timer.ts';

/** Bytes buffered here before the HTTP/2 stream is paused (then nghttp2 stops granting window). */
const HIGH_WATER_MARK = 64 * 1024;

export interface RequestBodyOwner {
  /** The body paused longer than server.readTimeout while it was wanted. */
  onReadTimeout(): void;
  /** The body paused STALL_CHECK_MS while it was wanted (the read timeout keeps running). */
  onStalled(): void;
}

function ignore(): void {}

export class H2RequestBody extends Readable implements PauseOwner {
  private readonly source: ServerHttp2Stream;
  private readonly owner: RequestBodyOwner;
  private readonly readPause: PauseTimer;
  private attached = false;
  private done = false;

  constructor(source: ServerHttp2Stream, owner: RequestBodyOwner, readTimeoutMs: number) {
    super({ highWaterMark: HIGH_WATER_MARK });
    this.source = source;
    this.owner = owner;
    this.readPause = new PauseTimer(readTimeoutMs, this);
    // fail() may run before anyone listens (a body never dispatched); an 'error' must not crash the shard.
    this.on('error', ignore);
  }

  _read(): void {
    if (this.done) return;
    if (!this.attached) {
      this.attached = true;
      this.source.on('data', this.onData);
      this.source.once('end', this.onEnd);
    }
    this.source.resume();
    this.arm();
  }

  private readonly onData = (chunk: Buffer): void => {
    if (this.done) return;
    if (this.push(chunk)) this.arm();
    else {
      // Nobody wants more now: the client is not the slow one.
      this.disarm();
      this.source.pause();
    }
  };

  private readonly onEnd = (): void => {
    if (this.done) return;
    this.done = true;
    this.disarm();
    this.push(null);
  };

  /** The upload did not complete: the reader sees `err`, never an end. */
  fail(err: Error): void {
    if (this.done) return;
    this.done = true;
    this.disarm();
    this.destroy(err);
  }

  get settled(): boolean {
    return this.done;
  }

  private arm(): void {
    this.readPause.restart();
  }

  private disarm(): void {
    this.readPause.stop();
  }

  onPauseStalled(): void {
    if (this.done) return;
    try {
      this.owner.onStalled();
    } catch {
      // the owner logs its own failures; a failed check changes nothing for the body
    }
  }

  onPauseTimeout(): void {
    if (this.done) return;
    try {
      this.owner.onReadTimeout();
    } catch (err) {
      this.fail(err as Error);
    }
  }

  _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    this.done = true;
    this.disarm();
    if (this.attached) {
      this.source.off('data', this.onData);
      this.source.off('end', this.onEnd);
    }
    cb(err);
  }
}
