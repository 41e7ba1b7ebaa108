// What the main thread sends a load-generator worker (bench/lib/load-worker.ts) and what it gets back.
import type { Endpoint } from './targets.ts';

export type Reuse = 'keepalive' | 'newconn';

export interface LoadTask {
  endpoints: Endpoint[];
  method: 'GET' | 'POST';
  path: string;
  /** Request body size for POST (the same bytes every time). */
  uploadBytes: number;
  /** Expected response body size: a response of another size counts as an error. */
  expectBytes: number;
  reuse: Reuse;
  /** Concurrent requests this worker keeps in flight (closed loop) or may have in flight (fixed rate). */
  concurrency: number;
  /** Concurrent streams per connection for HTTP/2 and HTTP/3 keep-alive (connections = concurrency / streams). */
  streams: number;
  warmupMs: number;
  durationMs: number;
  /** Requests per second for this worker; 0 = closed loop (max throughput). */
  rate: number;
  /** Int32Array view: [0] requests completed (measured and warm-up), [1] errors. Read by the progress line. */
  counters: SharedArrayBuffer;
  /** Connections of the worker are spread over endpoints starting at this offset. */
  offset: number;
}

export interface LoadResult {
  /** hdr-histogram-js compressed base64, microseconds. */
  histogram: string;
  requests: number;
  errors: number;
  bytes: number;
  /** Fixed-rate mode: sends that left late because all `concurrency` slots were busy (server behind the rate). */
  lateSends: number;
  errorSamples: string[];
  /** This worker thread's CPU time during the measured window, microseconds. */
  cpuUserUs: number;
  cpuSystemUs: number;
  elapsedMs: number;
}
