// One active health probe of a FastCGI backend: GET healthCheck.path run as a FastCGI request on a fresh php-fpm
// connection (the path resolved under moodle.wwwRoot and the CGI parameters built as for a client request, by
// src/fastcgi/fetch.ts), judged as an HTTP probe is: the status, and a JSON body saying "unhealthy" fails.
import { realpath } from 'node:fs/promises';
import type { BackendConfig } from '../config/types.ts';
import { fastCgiTarget } from '../fastcgi/from-config.ts';
import { fastCgiFetch } from '../fastcgi/fetch.ts';
import { FastCgiPool } from '../fastcgi/pool.ts';
import type { StatusMatcher } from './expect-status.ts';
import { MAX_PROBE_BODY, bodySaysUnhealthy, type ProbeResult } from './probe.ts';

export interface FastCgiProbeTarget {
  /** moodle.wwwRoot's directory. */
  documentRoot: string;
  path: string;
  timeoutMs: number;
  matchStatus: StatusMatcher;
}

/** A pool for probes only: one connection at a time, never kept (each probe tests that php-fpm still accepts). */
export function probePool(b: BackendConfig, timeoutMs: number): FastCgiPool {
  return new FastCgiPool({ target: fastCgiTarget(b), maxConnections: 1, keepAlive: false, connectTimeoutMs: timeoutMs, queueTimeoutMs: timeoutMs });
}

const TIMEOUT_CODES = new Set(['ETIMEDOUT', 'QUICLB_FCGI_CONNECT_TIMEOUT', 'QUICLB_FCGI_QUEUE_TIMEOUT', 'QUICLB_FCGI_HEADERS_TIMEOUT', 'QUICLB_FCGI_BODY_TIMEOUT']);

const realRoots = new Map<string, Promise<string>>();

export async function probeFastCgi(pool: FastCgiPool, target: FastCgiProbeTarget, cancel?: AbortSignal): Promise<ProbeResult> {
  const started = performance.now();
  const done = (ok: boolean, reason: string, status?: number): ProbeResult => ({ ok, reason, status, durationMs: performance.now() - started });
  try {
    let real = realRoots.get(target.documentRoot);
    if (real === undefined) {
      real = realpath(target.documentRoot);
      realRoots.set(target.documentRoot, real);
      real.catch(() => realRoots.delete(target.documentRoot));
    }
    const res = await fastCgiFetch(pool, {
      documentRoot: target.documentRoot,
      realRoot: await real,
      path: target.path,
      timeoutMs: target.timeoutMs,
      maxBodyBytes: MAX_PROBE_BODY,
      headers: [['user-agent', 'quiclb-health'], ['accept', 'application/json, */*']],
    });
    if (!target.matchStatus(res.status)) return done(false, `status ${res.status}`, res.status);
    const contentType = res.headers.find(([n]) => n === 'content-type')?.[1];
    if (bodySaysUnhealthy(res.truncated ? undefined : res.body.toString('utf8'), contentType)) return done(false, 'body says "unhealthy"', res.status);
    return done(true, `status ${res.status}`, res.status);
  } catch (err) {
    if (cancel?.aborted) return done(false, 'cancelled');
    const code = (err as { code?: unknown }).code;
    if (typeof code !== 'string') return done(false, 'UNKNOWN');
    return done(false, TIMEOUT_CODES.has(code) ? 'timeout' : code);
  }
}
