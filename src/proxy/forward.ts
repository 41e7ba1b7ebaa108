// Forwarding one request to a backend (undici's Pool for HTTP, a FastCgiPool for php-fpm: upstream.ts) through
// dispatch() with a handler that writes the response straight to the client's BodySink (no Readable, no
// AbortController, no promise per chunk): pick a backend, send, stream both ways with backpressure, retry an
// idempotent request once on another backend when the first fails before any response byte, and map failures
// to 502/503/504.
//
// Who caused a failure decides what it counts against: a failure of the client (it left, its body was
// truncated, too large or too slow) is answered 4xx or dropped and never counts against a backend;
// a backend's failure (refused, reset, timeout, 5xx) feeds passive health. One instance per shard thread and
// configuration generation (src/shard/runtime.ts); the backend pools outlive it (src/proxy/pools.ts).
import type { Dispatcher } from 'undici';
import type { Readable } from 'node:stream';
import type { Config } from '../config/types.ts';
import type { Logger } from '../shared/logger.ts';
import { SharedState, B_ACTIVE, BC_REQUESTS, BC_ERRORS, BC_FAILOVERS, G_NO_BACKEND } from '../shared/state.ts';
import type { BodySink, FrontResponse, HeaderList } from './types.ts';
import { firstHeader } from './headers.ts';
import { classifyFailure, clientFault, errorCode, isIdempotent } from './errors.ts';
import type { Balancer } from '../balancer/balancer.ts';
import type { Backend } from '../balancer/backend.ts';
import { recordBackendResult } from '../health/passive.ts';
import type { BackendUpstreams } from './pools.ts';
import { Attempt } from './attempt.ts';
import type { LatencyRecorder } from '../admin/latency.ts';
import { spoolBody } from '../fastcgi/spool.ts';
import { fastCgiUpstream, httpUpstream, type Upstream, type UpstreamRequest } from './upstream.ts';

export interface ForwarderOptions {
  config: Config;
  state: SharedState;
  balancer: Balancer;
  logger: Logger;
  latency: LatencyRecorder;
  /** The backends' upstreams, leased for this generation (BackendPools.lease); absent: the Forwarder makes and closes its own. */
  pools?: BackendUpstreams;
  /** Shards running a Forwarder: FastCGI pools split backend.maxConnections between them. */
  shards: number;
}

/**
 * What the pipeline hands the forwarder for one request: the UpstreamRequest (request, body maybe wrapped by a
 * size limit, rewritten header fields, the PHP script for FastCGI backends) and the ways back to the client.
 */
export interface ForwardJob extends UpstreamRequest {
  res: FrontResponse;
  cookies: Map<string, string>;
  /**
   * Sends the response head through the pipeline's response filters; returns the sink to write to, or null
   * when a phase took the response over (X-Accel-Redirect): the backend's body is then read and dropped.
   */
  respond(status: number, headers: HeaderList, backend: Backend): BodySink | null;
  /** Answers with a short text from quiclb itself (errors). */
  answer(status: number, text: string, extra?: HeaderList): void;
  /** Breaks the response off (the client must see it incomplete). */
  abort(reason: Error): void;
}

export interface ForwardOutcome {
  status: number;
  backend?: Backend;
  attempts: number;
}

/** Thrown into a dispatch to stop it because the client went away. */
class ClientGone extends Error {
  readonly code = 'QUICLB_CLIENT_ABORTED';
}

const CLIENT_GONE = new ClientGone('the client went away');

export class Forwarder {
  private readonly upstreams = new Map<number, Upstream>();
  private readonly opts: ForwarderOptions;

  constructor(opts: ForwarderOptions) {
    this.opts = opts;
  }

  private upstream(backend: Backend): Upstream {
    if (this.opts.pools !== undefined) return this.opts.pools.upstream(backend);
    let upstream = this.upstreams.get(backend.index);
    if (!upstream) {
      const { config, shards, logger } = this.opts;
      const b = config.loadBalancer.backendServers.find((s) => s.id === backend.id)!;
      upstream = backend.protocol === 'fastcgi' ? fastCgiUpstream(b, config, shards, logger) : httpUpstream(backend, config);
      this.upstreams.set(backend.index, upstream);
    }
    return upstream;
  }

  forward(job: ForwardJob): Promise<ForwardOutcome> {
    if (job.script === undefined || job.body === null || firstHeader(job.req.headers, 'content-length') !== undefined) return this.run(job);
    return this.spoolThenRun(job, job.body);
  }

  /**
   * FastCGI sends CONTENT_LENGTH before the body (PHP reads exactly that many bytes), so a body without a declared
   * length (HTTP/1.1 chunked, HTTP/2 or HTTP/3 DATA without content-length) goes to a temporary file first, as
   * nginx's client_body_temp_path; server.maxBodySize bounds it.
   */
  private async spoolThenRun(job: ForwardJob, body: Readable): Promise<ForwardOutcome> {
    let clientLeft = false;
    job.res.onClientAbort(() => (clientLeft = true));
    let spooled;
    try {
      spooled = await spoolBody(body, { maxBytes: this.opts.config.server.maxBodySize });
    } catch (err) {
      return this.refuseBody(job, err as Error, clientLeft);
    }
    try {
      return await this.run({ ...job, body: spooled.body, bodyLength: spooled.contentLength });
    } finally {
      await spooled.dispose();
    }
  }

  /** The request body could not be spooled: the client's doing (413, 400, 408, or it left), or quiclb's disk (500). */
  private refuseBody(job: ForwardJob, err: Error, clientLeft: boolean): ForwardOutcome {
    const code = errorCode(err);
    if (code === 'QUICLB_SPOOL_TOO_LARGE') {
      job.body?.resume();
      job.answer(413, `413 Content Too Large: ${err.message}.\n`);
      return { status: 413, attempts: 0 };
    }
    const blame = clientFault(err, clientLeft);
    if (blame === undefined || code === 'QUICLB_SPOOL_IO') {
      this.opts.logger.error({ err, method: job.req.method, path: job.req.path }, 'could not spool a request body for FastCGI');
      job.answer(500, '500 Internal Server Error: quiclb could not store the request body (see its log).\n');
      return { status: 500, attempts: 0 };
    }
    if (clientLeft || job.res.headersSent) job.abort(err);
    else job.answer(blame.status, `${blame.status} ${blame.text}\n`);
    return { status: clientLeft ? 499 : blame.status, attempts: 0 };
  }

  private run(job: ForwardJob): Promise<ForwardOutcome> {
    return new Promise<ForwardOutcome>((resolve) => {
      const { config, state, balancer, logger } = this.opts;
      const req = job.req;
      const retryable = config.loadBalancer.retryIdempotent && isIdempotent(req.method) && job.body === null;
      let tried: Set<number> | undefined;
      let attemptNo = 0;
      let current: Attempt | undefined;
      let clientLeft = false;
      job.res.onClientAbort(() => {
        clientLeft = true;
        current?.abort(CLIENT_GONE);
      });

      const start = (): void => {
        attemptNo++;
        const picked = balancer.select({ host: req.authority, path: req.path, clientIp: req.remoteAddress, cookies: job.cookies, exclude: tried });
        if (!picked) {
          state.addGlobal(G_NO_BACKEND);
          job.body?.resume();
          const why = tried !== undefined ? 'every backend that was tried failed' : 'no healthy backend is available';
          job.answer(503, `503 Service Unavailable: ${why}. quiclb will route again as soon as a backend recovers.\n`, [['retry-after', '5']]);
          resolve({ status: 503, attempts: attemptNo - 1 });
          return;
        }
        const backend = picked.backend;
        state.addBackendGauge(backend.index, B_ACTIVE, 1);
        state.addBackendCounter(backend.index, BC_REQUESTS);
        const attempt = new Attempt(job, backend, finished);
        current = attempt;
        if (attemptNo === 1 && job.body !== null) job.res.inform(100); // RFC 9110 §10.1.1, when the client asked
        try {
          this.upstream(backend).dispatch(job, attempt);
        } catch (err) {
          // The upstream refused the request itself (a header or target undici cannot send): the request's fault.
          finished(attempt, err as Error);
          return;
        }
        if (clientLeft) attempt.abort(CLIENT_GONE);
      };

      const finished = (attempt: Attempt, err: Error | null): void => {
        const backend = attempt.backend;
        state.addBackendGauge(backend.index, B_ACTIVE, -1);
        if (err === null) {
          const ok = attempt.status < 500;
          recordBackendResult(state, backend.index, ok, config.healthCheck.passiveFailureThreshold, logger, backend.id);
          if (!ok) state.addBackendCounter(backend.index, BC_ERRORS);
          this.opts.latency.record(backend.index, performance.now() - attempt.started);
          resolve({ status: attempt.status, backend, attempts: attemptNo });
          return;
        }
        const blame = clientFault(err, clientLeft);
        if (blame !== undefined) {
          // The client's doing: its body was cut, too slow, too large or invalid, or it left. Never the backend's.
          if (attempt.responded || clientLeft || job.res.headersSent) job.abort(err);
          else job.answer(blame.status, `${blame.status} ${blame.text}\n`);
          resolve({ status: clientLeft ? 499 : blame.status, backend, attempts: attemptNo });
          return;
        }
        const failure = classifyFailure(err);
        state.addBackendCounter(backend.index, BC_ERRORS);
        recordBackendResult(state, backend.index, false, config.healthCheck.passiveFailureThreshold, logger, backend.id);
        logger.warn({ backend: backend.id, code: failure.code, kind: failure.kind, method: req.method, path: req.path, attempt: attemptNo }, 'backend request failed');
        if (attempt.takenOver) {
          // The backend broke after its head; the phase that took the response over answers regardless.
          resolve({ status: attempt.status, backend, attempts: attemptNo });
          return;
        }
        if (attempt.responded || job.res.headersSent) {
          // Mid-response: the client must see the response broken, never complete-looking.
          job.abort(err);
          resolve({ status: 502, backend, attempts: attemptNo });
          return;
        }
        if (retryable && attemptNo === 1 && failure.kind !== 'timeout') {
          state.addBackendCounter(backend.index, BC_FAILOVERS);
          (tried ??= new Set()).add(backend.index);
          start();
          return;
        }
        job.answer(
          failure.status,
          failure.status === 504
            ? `504 Gateway Timeout: backend ${backend.id} did not answer in time.\n`
            : `502 Bad Gateway: backend ${backend.id} could not be reached (${failure.code}).\n`,
        );
        resolve({ status: failure.status, backend, attempts: attemptNo });
      };

      start();
    });
  }

  /** Closes the pools this Forwarder made itself (leased ones go back through PoolLease.release()). */
  async close(): Promise<void> {
    await Promise.all([...this.upstreams.values()].map((u) => u.close().catch(() => undefined)));
  }
}
