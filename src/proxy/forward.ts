// The proxy state machine: pick a backend, forward through undici with streaming bodies both ways,
// retry an idempotent request once on another backend when the first fails before any response byte,
// and map failures to 502/503/504. One instance per shard thread.
import { Pool } from 'undici';
import { Transform } from 'node:stream';
import type { Readable } from 'node:stream';
import type { Config } from '../config/types.ts';
import type { Logger } from '../shared/logger.ts';
import { SharedState, B_ACTIVE, BC_REQUESTS, BC_ERRORS, BC_FAILOVERS, G_NO_BACKEND } from '../shared/state.ts';
import type { BodySink, FrontRequest, FrontResponse, HeaderList } from './types.ts';
import { backendRequestHeaders, headerValues, firstHeader, responseHeaderList } from './headers.ts';
import { classifyFailure, isIdempotent } from './errors.ts';
import type { Balancer } from '../balancer/balancer.ts';
import type { Backend } from '../balancer/backend.ts';
import { parseCookies } from '../balancer/affinity.ts';
import { recordBackendResult } from '../health/passive.ts';
import type { LatencyRecorder } from '../admin/latency.ts';

export interface ProxyOptions {
  config: Config;
  state: SharedState;
  balancer: Balancer;
  logger: Logger;
  latency: LatencyRecorder;
  /** Extra headers on every response to a TCP client (Alt-Svc). */
  altSvc?: string;
}

export interface ProxyOutcome {
  status: number;
  backend?: string;
  attempts: number;
}

/**
 * Copies the backend's body to the client with backpressure. A plain pump rather than stream.pipeline:
 * pipeline builds an AbortController and a DOMException per call, measurable on small responses.
 * Rejects when either side fails; the caller aborts the other.
 */
function pump(source: Readable, sink: BodySink, res: FrontResponse): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    let done = false;
    const finish = (err?: Error | null) => {
      if (done) return;
      done = true;
      source.off('data', onData);
      if (err) {
        source.destroy();
        reject(err);
      } else resolve();
    };
    const onData = (chunk: Buffer) => {
      if (!sink.write(chunk)) {
        source.pause();
        sink.onDrain(() => source.resume());
      }
    };
    source.on('data', onData);
    source.once('end', () => {
      sink.end();
      finish();
    });
    source.once('error', finish);
    res.onClientAbort(() => finish(new Error('client closed the response stream')));
  });
}

class BodyTooLarge extends Error {
  code = 'QUICLB_BODY_TOO_LARGE';
}

/** Counts request body bytes and fails the stream past maxBodySize. */
function limitBody(body: Readable, max: number): Readable {
  let seen = 0;
  const limiter = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      seen += chunk.length;
      if (seen > max) cb(new BodyTooLarge(`request body exceeds server.maxBodySize (${max} bytes)`));
      else cb(null, chunk);
    },
  });
  body.on('error', (err) => limiter.destroy(err));
  return body.pipe(limiter);
}

export class Proxy {
  private readonly pools = new Map<number, Pool>();
  private readonly opts: ProxyOptions;

  constructor(opts: ProxyOptions) {
    this.opts = opts;
  }

  private pool(backend: Backend): Pool {
    let pool = this.pools.get(backend.index);
    if (!pool) {
      const lb = this.opts.config.loadBalancer;
      pool = new Pool(`http://${backend.host.includes(':') ? `[${backend.host}]` : backend.host}:${backend.port}`, {
        connections: backend.maxConnections > 0 ? backend.maxConnections : 256,
        pipelining: 1,
        keepAliveTimeout: 30_000,
        connect: { timeout: lb.connectTimeoutMs },
        headersTimeout: lb.backendTimeoutMs,
        bodyTimeout: Math.max(lb.backendTimeoutMs, this.opts.config.server.readTimeoutMs),
      });
      this.pools.set(backend.index, pool);
    }
    return pool;
  }

  async handle(req: FrontRequest, res: FrontResponse): Promise<ProxyOutcome> {
    const { config, state, balancer, logger } = this.opts;
    const max = config.server.maxBodySize;
    const declared = Number(firstHeader(req.headers, 'content-length') ?? '0');
    if (max > 0 && declared > max) {
      req.body?.resume();
      this.simple(res, 413, `Request body of ${declared} bytes exceeds the limit of ${max} bytes.\n`);
      return { status: 413, attempts: 0 };
    }
    const body = req.body && max > 0 ? limitBody(req.body, max) : req.body;
    const cookies = parseCookies(headerValues(req.headers, 'cookie'));
    const outHeaders = backendRequestHeaders(
      req.headers,
      { clientIp: req.remoteAddress, proto: req.scheme, host: req.authority, port: req.localPort },
      config.moodle.proxyHeaders,
    );
    const retryable = config.loadBalancer.retryIdempotent && isIdempotent(req.method) && req.body === null;
    const tried = new Set<number>();
    const abort = new AbortController();
    res.onClientAbort(() => abort.abort());
    const host = req.authority;

    for (let attempt = 1; ; attempt++) {
      const picked = balancer.select({ host, path: req.path, clientIp: req.remoteAddress, cookies, exclude: tried });
      if (!picked) {
        state.addGlobal(G_NO_BACKEND);
        body?.resume();
        const why = tried.size > 0 ? 'every backend that was tried failed' : 'no healthy backend is available';
        this.simple(res, 503, `503 Service Unavailable: ${why}. quiclb will route again as soon as a backend recovers.\n`, [['retry-after', '5']]);
        return { status: 503, attempts: attempt - 1 };
      }
      const backend = picked.backend;
      tried.add(backend.index);
      const started = performance.now();
      state.addBackendGauge(backend.index, B_ACTIVE, 1);
      state.addBackendCounter(backend.index, BC_REQUESTS);
      let headersSent = false;
      try {
        const upstream = await this.pool(backend).request({
          method: req.method as 'GET',
          path: req.path,
          headers: outHeaders.flat(),
          body: body ?? undefined,
          signal: abort.signal,
        });
        const ok = upstream.statusCode < 500;
        recordBackendResult(state, backend.index, ok, config.healthCheck.passiveFailureThreshold, logger, backend.id);
        if (!ok) state.addBackendCounter(backend.index, BC_ERRORS);
        const headers = responseHeaderList(upstream.headers);
        const affinity = balancer.afterResponse(cookies, backend, headerValues(headers, 'set-cookie'), req.scheme === 'https');
        if (affinity) headers.push(['set-cookie', affinity]);
        if (this.opts.altSvc && req.protocol !== 'HTTP/3') headers.push(['alt-svc', this.opts.altSvc]);
        const sink = res.respond(upstream.statusCode, headers);
        headersSent = true;
        await pump(upstream.body, sink, res);
        this.opts.latency.record(backend.index, performance.now() - started);
        return { status: upstream.statusCode, backend: backend.id, attempts: attempt };
      } catch (err) {
        const failure = classifyFailure(err, !headersSent);
        if ((err as { code?: string }).code === 'QUICLB_BODY_TOO_LARGE') {
          if (!headersSent) this.simple(res, 413, `${(err as Error).message}\n`);
          else res.abort(err as Error);
          return { status: 413, backend: backend.id, attempts: attempt };
        }
        if (abort.signal.aborted) {
          // The client left; nothing to answer and not the backend's fault.
          return { status: 499, backend: backend.id, attempts: attempt };
        }
        state.addBackendCounter(backend.index, BC_ERRORS);
        recordBackendResult(state, backend.index, false, config.healthCheck.passiveFailureThreshold, logger, backend.id);
        logger.warn({ backend: backend.id, code: failure.code, kind: failure.kind, method: req.method, path: req.path, attempt }, 'backend request failed');
        if (headersSent) {
          res.abort(err as Error);
          return { status: 502, backend: backend.id, attempts: attempt };
        }
        if (retryable && attempt === 1 && failure.kind !== 'timeout') {
          state.addBackendCounter(backend.index, BC_FAILOVERS);
          continue;
        }
        this.simple(res, failure.status, failure.status === 504
          ? `504 Gateway Timeout: backend ${backend.id} did not answer in time.\n`
          : `502 Bad Gateway: backend ${backend.id} could not be reached (${failure.code}).\n`);
        return { status: failure.status, backend: backend.id, attempts: attempt };
      } finally {
        state.addBackendGauge(backend.index, B_ACTIVE, -1);
      }
    }
  }

  /** A small text answer generated by quiclb itself. */
  simple(res: FrontResponse, status: number, text: string, extra: HeaderList = []): void {
    if (res.headersSent) {
      res.abort();
      return;
    }
    const body = Buffer.from(text);
    const sink = res.respond(status, [
      ['content-type', 'text/plain; charset=utf-8'],
      ['content-length', String(body.length)],
      ['cache-control', 'no-store'],
      ...extra,
    ]);
    sink.end(body);
  }

  async close(): Promise<void> {
    await Promise.all([...this.pools.values()].map((p) => p.close().catch(() => undefined)));
  }
}
