// One attempt of one request against one backend: the undici dispatch handler (a FastCgiPool takes the same
// handler) that writes the backend's answer straight to the client's BodySink, pausing the backend while the
// client is slower. The forwarder (forward.ts) and the WebSocket handshake (websocket.ts) drive it alike.
import type { Dispatcher } from 'undici';
import type { BodySink, HeaderList } from './types.ts';
import type { Backend } from '../balancer/backend.ts';
import { responseHeaderList } from './headers.ts';

/** What an attempt needs of its request. */
export interface AttemptJob {
  /** Sends the response head through the pipeline; returns the sink for the body, or null when a phase took the response over. */
  respond(status: number, headers: HeaderList, backend: Backend): BodySink | null;
}

/** Where a taken-over response's backend body goes (read, so a kept connection stays usable). */
const DROP: BodySink = { write: () => true, end() {}, onDrain: (cb) => queueMicrotask(cb) };

export class Attempt implements Dispatcher.DispatchHandler {
  readonly backend: Backend;
  readonly started = performance.now();
  status = 0;
  /** A phase answers instead of this backend's body (see AttemptJob.respond). */
  takenOver = false;
  protected readonly job: AttemptJob;
  protected controller: Dispatcher.DispatchController | undefined;
  protected sink: BodySink | undefined;
  protected settled = false;
  private abortReason: Error | undefined;
  private readonly done: (attempt: Attempt, err: Error | null) => void;
  private readonly resume = (): void => {
    this.controller?.resume();
  };

  constructor(job: AttemptJob, backend: Backend, done: (attempt: Attempt, err: Error | null) => void) {
    this.job = job;
    this.backend = backend;
    this.done = done;
  }

  /** The response head went to the client: a failure from now on breaks the response (no retry, no 502). */
  get responded(): boolean {
    return this.sink !== undefined;
  }

  abort(reason: Error): void {
    if (this.settled) return;
    this.abortReason = reason;
    this.controller?.abort(reason);
  }

  /** Ends the attempt once: `err` null for a complete response. */
  protected finish(err: Error | null): void {
    if (this.settled) return;
    this.settled = true;
    this.done(this, err);
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.controller = controller;
    if (this.abortReason) controller.abort(this.abortReason);
  }

  onResponseStart(_controller: Dispatcher.DispatchController, statusCode: number, headers: Record<string, string | string[] | undefined>): void {
    // Interim responses (103 Early Hints, an unsolicited 102): not the answer; the final one follows.
    if (statusCode < 200) return;
    this.status = statusCode;
    const sink = this.job.respond(statusCode, responseHeaderList(headers), this.backend);
    this.takenOver = sink === null;
    this.sink = sink ?? DROP;
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    if (this.sink !== undefined && !this.sink.write(chunk)) {
      controller.pause();
      this.sink.onDrain(this.resume);
    }
  }

  onResponseEnd(): void {
    if (this.settled) return;
    this.sink?.end();
    this.finish(null);
  }

  onResponseError(_controller: Dispatcher.DispatchController, err: Error): void {
    this.finish(err);
  }
}
