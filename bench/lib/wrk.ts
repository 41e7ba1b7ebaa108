// wrk (https://github.com/wg/wrk, Debian's `wrk`): the HTTP/1.1 load generator for closed-loop keep-alive runs,
// plain and over TLS. A Lua script sets the method and body and, in wrk's done() hook, prints one JSON line
// with the totals and the latency distribution wrk recorded (microseconds, from writing a request to the end
// of its response; wrk keeps one request in flight per connection).
// wrk takes whole seconds only (-d), has no warm-up and no fixed-rate mode (that is wrk2, not in Debian):
// the caller warms up with another client and uses h2load --rps for fixed rates.
import type { Latency } from './load.ts';

export interface WrkRequest {
  url: string;
  method: 'GET' | 'POST';
  uploadBytes: number;
  threads: number;
  connections: number;
  durationS: number;
  scriptFile: string;
}

export interface WrkResult {
  requests: number;
  /** Response bytes, headers included. */
  bytes: number;
  durationS: number;
  errors: { connect: number; read: number; write: number; status: number; timeout: number };
  latency: Latency;
}

const MARK = 'WRKJSON ';

/** The Lua script: request shape, and the done() hook that prints the JSON line parseWrk reads. */
export function wrkScript(method: 'GET' | 'POST', uploadBytes: number): string {
  const body =
    method === 'POST'
      ? `wrk.method = "POST"\nwrk.body = string.rep("x", ${uploadBytes})\nwrk.headers["Content-Type"] = "application/octet-stream"\n`
      : '';
  return `${body}done = function(summary, latency, requests)
  local e = summary.errors
  local p = function(q) return latency:percentile(q) end
  -- With no request done the mean is NaN, which JSON has no word for.
  local mean = latency.mean
  if mean ~= mean then mean = 0 end
  io.write(string.format('\\n${MARK}{"duration_us":%d,"requests":%d,"bytes":%d,"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d,' ..
    '"p50":%d,"p90":%d,"p99":%d,"p999":%d,"max":%d,"mean":%.3f}\\n',
    summary.duration, summary.requests, summary.bytes, e.connect, e.read, e.write, e.status, e.timeout,
    p(50), p(90), p(99), p(99.9), latency.max, mean))
end
`;
}

export function wrkArgs(r: WrkRequest): string[] {
  const threads = Math.max(1, Math.min(r.threads, r.connections));
  return ['-t', String(threads), '-c', String(r.connections), '-d', `${Math.max(1, Math.round(r.durationS))}s`, '--timeout', '30s', '-s', r.scriptFile, r.url];
}

/** wrk's whole-second duration for a wanted one. */
export function wrkDurationS(durationS: number): number {
  return Math.max(1, Math.round(durationS));
}

export function parseWrk(stdout: string): WrkResult {
  const line = stdout.split('\n').find((l) => l.startsWith(MARK));
  if (line === undefined) throw new Error(`wrk printed no result line:\n${stdout.slice(-800)}`);
  const j = JSON.parse(line.slice(MARK.length)) as Record<string, number>;
  const ms = (us: number): number => Math.round(us) / 1000;
  return {
    requests: j.requests,
    bytes: j.bytes,
    durationS: j.duration_us / 1e6,
    errors: { connect: j.connect, read: j.read, write: j.write, status: j.status, timeout: j.timeout },
    latency: { p50: ms(j.p50), p90: ms(j.p90), p99: ms(j.p99), p999: ms(j.p999), max: ms(j.max), mean: ms(j.mean) },
  };
}
