// A phase of the request pipeline (in the spirit of Pingora's ProxyHttp phases and Envoy's filter chain).
// Every hook is optional; the pipeline calls them in the fixed order of src/pipeline/phases/index.ts.
import type { BodySink, HeaderList } from '../shared/http-types.ts';
import type { Exchange } from './exchange.ts';

export interface ResponseHead {
  status: number;
  headers: HeaderList;
}

export interface Phase {
  readonly name: string;
  /**
   * Runs on the request, in order. Returns true when the phase answered it (the chain stops; a promise
   * when it answers later: it resolves once the answer is complete), false to go on.
   */
  request?(ex: Exchange): boolean | Promise<boolean>;
  /**
   * Runs on a backend's response head, before the response filters. Returning a promise takes the response
   * over (X-Accel-Redirect): the backend's body is read and dropped, and the phase answers through
   * ex.respond() instead (the response and body filters apply as to any answer); the promise settles once
   * that answer is complete. Return undefined to let the backend's response through.
   */
  backendResponse?(ex: Exchange, head: ResponseHead): Promise<void> | undefined;
  /** Response filter: may change the status and header list before they go to the client. Every answer passes here. */
  response?(ex: Exchange, head: ResponseHead): void;
  /**
   * Body filter: may wrap the sink (compression, cache store). Runs after every response filter. Body bytes
   * pass the filters in phase order (an earlier phase's filter feeds a later phase's), so a later phase sees
   * what an earlier one produced.
   */
  body?(ex: Exchange, head: ResponseHead, sink: BodySink): BodySink;
  /** After the exchange, answered or failed (logging, metrics). Must not throw. */
  done?(ex: Exchange): void;
}
