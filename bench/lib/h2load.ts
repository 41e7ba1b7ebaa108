// h2load (nghttp2, Debian's `nghttp2-client`): the HTTP/2 load generator, and the HTTP/1.1 one (--h1) for
// fixed-rate runs, which wrk cannot do. Timing-based mode (-D) with its own warm-up (--warm-up-time).
// h2load prints only min/max/mean/sd of request time; its --log-file has one line per request of the measured
// phase (start µs since epoch, status, µs until the end of the response), from which the percentiles here are
// computed. Fixed rate (--rps) is per client and paced by a timer per client: latency is measured from when a
// request was actually sent, not from when it was due, so it is NOT corrected for coordinated omission the way
// our own client's fixed-rate mode is (at half of the peak rate, where the server keeps up, the two agree).
import { readFileSync } from 'node:fs';
import type { Latency } from './load.ts';

export interface H2loadRequest {
  url: string;
  /** HTTP/1.1 (--h1) instead of HTTP/2. */
  h1: boolean;
  clients: number;
  /** Concurrent streams per connection (-m); 1 for HTTP/1.1 (no pipelining). */
  streams: number;
  threads: number;
  durationMs: number;
  warmupMs: number;
  /** Requests per second per client; 0 = as fast as it can. */
  rpsPerClient: number;
  logFile: string;
  /** POST this file (-d). */
  dataFile?: string;
}

export interface H2loadResult {
  /** Streams that ended with a 2xx or 3xx. */
  succeeded: number;
  /** Streams that failed: non-2xx/3xx answers and transport errors (h2load's "failed"). */
  failed: number;
  errored: number;
  timeout: number;
  /** Response body bytes (h2load's "data"). */
  dataBytes: number;
  /** h2load's own statistics of request time, ms. */
  min: number;
  max: number;
  mean: number;
  sd: number;
}

export function h2loadArgs(r: H2loadRequest): string[] {
  const args = [
    '-c', String(r.clients),
    '-m', String(r.h1 ? 1 : Math.max(1, r.streams)),
    '-t', String(Math.max(1, Math.min(r.threads, r.clients))),
    '-D', `${Math.max(1, Math.round(r.durationMs))}ms`,
    '--log-file', r.logFile,
  ];
  if (r.warmupMs > 0) args.push('--warm-up-time', `${Math.round(r.warmupMs)}ms`);
  if (r.rpsPerClient > 0) args.push('--rps', r.rpsPerClient.toFixed(3));
  if (r.h1) args.push('--h1');
  if (r.dataFile) args.push('-d', r.dataFile);
  args.push(r.url);
  return args;
}

/** "105us", "47.38ms", "1.2s" -> ms. */
function timeMs(s: string): number {
  const m = /^([\d.]+)(us|ms|s)$/.exec(s);
  if (!m) return NaN;
  const v = Number(m[1]);
  return m[2] === 'us' ? v / 1000 : m[2] === 'ms' ? v : v * 1000;
}

export function parseH2load(stdout: string): H2loadResult {
  const req = /requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored, (\d+) timeout/.exec(stdout);
  if (!req) throw new Error(`h2load printed no summary:\n${stdout.slice(-800)}`);
  const traffic = /traffic: .*?, .*? headers .*?, [\d.]+\w*B \((\d+)\) data/.exec(stdout);
  const t = /time for request:\s+(\S+)\s+(\S+)\s+(\S+)\s+(\S+)/.exec(stdout);
  return {
    succeeded: Number(req[4]),
    failed: Number(req[5]),
    errored: Number(req[6]),
    timeout: Number(req[7]),
    dataBytes: traffic ? Number(traffic[1]) : 0,
    min: t ? timeMs(t[1]) : NaN,
    max: t ? timeMs(t[2]) : NaN,
    mean: t ? timeMs(t[3]) : NaN,
    sd: t ? timeMs(t[4]) : NaN,
  };
}

/**
 * Percentiles of the successful requests in an h2load --log-file (nearest rank), ms; undefined when the file
 * is missing or empty. Failed streams (status -1) are left out, as in h2load's own statistics.
 */
export function latencyFromLog(file: string): Latency | undefined {
  let text: string;
  try {
    text = readFileSync(file, 'latin1');
  } catch {
    return undefined;
  }
  const values: number[] = [];
  let sum = 0;
  for (const line of text.split('\n')) {
    const a = line.indexOf('\t');
    const b = line.indexOf('\t', a + 1);
    if (a < 0 || b < 0 || line.startsWith('-1', a + 1)) continue;
    const us = Number(line.slice(b + 1));
    if (!Number.isFinite(us)) continue;
    values.push(us);
    sum += us;
  }
  if (values.length === 0) return undefined;
  const v = Float64Array.from(values).sort();
  const at = (p: number): number => v[Math.min(v.length - 1, Math.max(0, Math.ceil((p / 100) * v.length) - 1))] / 1000;
  return { p50: at(50), p90: at(90), p99: at(99), p999: at(99.9), max: v[v.length - 1] / 1000, mean: sum / v.length / 1000 };
}
