// An undici-style (v7+/v8) dispatch handler that records everything a FastCgiPool tells it, for tests.
import type { IncomingHttpHeaders } from 'node:http';
import type { Dispatcher } from 'undici';
import type { FastCgiPool } from '../../src/fastcgi/pool.ts';
import type { FastCgiRequest } from '../../src/fastcgi/client.ts';

export interface Outcome {
  status?: number;
  statusMessage?: string;
  headers?: IncomingHttpHeaders;
  rawHeaders?: unknown;
  body: Buffer;
  bytes: number;
  error?: Error & { code?: string };
  /** Callback names in order: start, response, data (once per run of chunks), end, error. */
  events: string[];
}

export interface Hooks {
  onStart?(c: Dispatcher.DispatchController): void;
  onResponse?(c: Dispatcher.DispatchController): void;
  onData?(c: Dispatcher.DispatchController, chunk: Buffer, o: Outcome): void;
  /** Keep no body bytes (only count them): for large downloads. */
  discard?: boolean;
}

/** Dispatches and resolves once the request ended or failed (and one more macrotask, to catch a late extra callback). */
export function exchange(pool: FastCgiPool, req: FastCgiRequest, hooks: Hooks = {}): Promise<Outcome> {
  const o: Outcome = { body: Buffer.alloc(0), bytes: 0, events: [] };
  const chunks: Buffer[] = [];
  return new Promise((resolve) => {
    const finish = (): void => {
      o.body = Buffer.concat(chunks);
      setTimeout(() => resolve(o), 20);
    };
    pool.dispatch(req, {
      onRequestStart(c) {
        o.events.push('start');
        hooks.onStart?.(c);
      },
      onResponseStart(c, status, headers, statusMessage) {
        o.events.push('response');
        o.status = status;
        o.headers = headers;
        o.statusMessage = statusMessage;
        o.rawHeaders = c.rawHeaders;
        hooks.onResponse?.(c);
      },
      onResponseData(c, chunk) {
        if (o.events.at(-1) !== 'data') o.events.push('data');
        o.bytes += chunk.length;
        if (!hooks.discard) chunks.push(Buffer.from(chunk));
        hooks.onData?.(c, chunk, o);
      },
      onResponseEnd() {
        o.events.push('end');
        finish();
      },
      onResponseError(_c, err) {
        o.events.push('error');
        o.error = err;
        finish();
      },
    });
  });
}
