// The DispatchController handed to undici-style handlers (undici v7+/v8 `Dispatcher.DispatchHandler`), so the
// proxy drives FastCGI and HTTP backends with one handler class. Whoever currently owns the request (the pool's
// queue, then the exchange on a connection) installs the hooks; the handler only sees pause/resume/abort.

import type { Dispatcher } from 'undici';
import { FastCgiError } from './errors.ts';

export interface ControllerHooks {
  abort(reason: Error): void;
  pause(): void;
  resume(): void;
}

export class FastCgiController implements Dispatcher.DispatchController {
  private _aborted = false;
  private _paused = false;
  private _reason: Error | null = null;
  private hooks: ControllerHooks | undefined;
  /** The response header fields as undici's rawHeaders: [name, value, name, value, ...], names lowercase. */
  rawHeaders: string[] | null = null;
  rawTrailers: string[] | null = null;

  get aborted(): boolean {
    return this._aborted;
  }

  get paused(): boolean {
    return this._paused;
  }

  get reason(): Error | null {
    return this._reason;
  }

  /** The current owner of the request; pause state carries over from one owner to the next. */
  attach(hooks: ControllerHooks | undefined): void {
    this.hooks = hooks;
  }

  abort(reason?: Error): void {
    if (this._aborted) return;
    this._aborted = true;
    this._reason = reason instanceof Error ? reason : new FastCgiError('QUICLB_FCGI_ABORTED', 'request aborted by the caller');
    this.hooks?.abort(this._reason);
  }

  pause(): void {
    if (this._paused) return;
    this._paused = true;
    this.hooks?.pause();
  }

  resume(): void {
    if (!this._paused) return;
    this._paused = false;
    this.hooks?.resume();
  }
}
