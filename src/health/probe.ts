// One active health probe: GET http://host:port{path} on a fresh connection, bounded in time and in
// the body bytes read. Failure = connection error, timeout, an unexpected status, or a JSON body that
// says {"status": "unhealthy"} (Moodle's admin/cli/healthcheck.php style).
import type { Dispatcher } from 'undici';
import type { StatusMatcher } from './expect-status.ts';

export const MAX_PROBE_BODY = 64 * 1024;

export interface ProbeTarget {
  host: string;
  port: number;
  path: string;
  /** Host header; absent = host:port. */
  hostHeader?: string;
  timeoutMs: number;
  matchStatus: StatusMatcher;
}

export interface ProbeResult {
  ok: boolean;
  /** Short human reason: "status 200", "status 503", "timeout", "ECONNREFUSED", 'body says "unhealthy"'. */
  reason: string;
  status?: number;
  durationMs: number;
}

const TIMEOUT_CODES = new Set(['UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT', 'UND_ERR_CONNECT_TIMEOUT', 'ETIMEDOUT']);

/** undici reports failures by `code`, sometimes on a wrapped cause; class identity is not reliable. */
function errorCode(err: unknown): string {
  let e = err as { code?: unknown; cause?: unknown } | undefined;
  for (let depth = 0; e && depth < 4; depth++) {
    if (typeof e.code === 'string' && e.code !== 'UND_ERR') return e.code;
    e = e.cause as typeof e;
  }
  return 'UNKNOWN';
}

function originOf(host: string, port: number): string {
  // RFC 3986 §3.2.2: an IPv6 literal goes in brackets.
  return host.includes(':') && !host.startsWith('[') ? `http://[${host}]:${port}` : `http://${host}:${port}`;
}

async function readCapped(body: Dispatcher.ResponseData['body'], cap: number): Promise<string | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    size += (chunk as Buffer).length;
    if (size > cap) {
      body.destroy();
      return undefined;
    }
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** True when the body is a JSON object whose "status" is "unhealthy". Non-JSON bodies pass. */
export function bodySaysUnhealthy(text: string | undefined, contentType: string | undefined): boolean {
  if (text === undefined) return false;
  const trimmed = text.trimStart();
  if (!trimmed.startsWith('{') && !(contentType ?? '').includes('json')) return false;
  try {
    const parsed = JSON.parse(trimmed) as unknown;
    if (parsed && typeof parsed === 'object' && !Array.isArray(parsed)) {
      const status = (parsed as Record<string, unknown>).status;
      return typeof status === 'string' && status.toLowerCase() === 'unhealthy';
    }
  } catch {
    // Not JSON after all: the status code alone decides.
  }
  return false;
}

export async function probe(dispatcher: Dispatcher, target: ProbeTarget, cancel?: AbortSignal): Promise<ProbeResult> {
  const started = performance.now();
  const ac = new AbortController();
  const onCancel = (): void => ac.abort();
  cancel?.addEventListener('abort', onCancel, { once: true });
  // One deadline for connect + headers + body together; headersTimeout/bodyTimeout alone would allow
  // a slow trickle to take several times timeoutMs.
  const deadline = setTimeout(() => ac.abort(), target.timeoutMs);
  const done = (ok: boolean, reason: string, status?: number): ProbeResult => ({ ok, reason, status, durationMs: performance.now() - started });
  try {
    const res = await dispatcher.request({
      origin: originOf(target.host, target.port),
      path: target.path,
      method: 'GET',
      headers: { host: target.hostHeader ?? `${target.host}:${target.port}`, 'user-agent': 'quiclb-health', accept: 'application/json, */*' },
      headersTimeout: target.timeoutMs,
      bodyTimeout: target.timeoutMs,
      signal: ac.signal,
      // A fresh connection each time, as HAProxy does: it tests that the backend still accepts, and
      // avoids false failures from a keep-alive socket the backend closed between checks.
      reset: true,
    });
    const contentType = res.headers['content-type'];
    const text = await readCapped(res.body, MAX_PROBE_BODY);
    if (!target.matchStatus(res.statusCode)) return done(false, `status ${res.statusCode}`, res.statusCode);
    if (bodySaysUnhealthy(text, Array.isArray(contentType) ? contentType[0] : contentType)) {
      return done(false, 'body says "unhealthy"', res.statusCode);
    }
    return done(true, `status ${res.statusCode}`, res.statusCode);
  } catch (err) {
    if (cancel?.aborted) return done(false, 'cancelled');
    const code = errorCode(err);
    if (ac.signal.aborted || TIMEOUT_CODES.has(code)) return done(false, 'timeout');
    return done(false, code);
  } finally {
    clearTimeout(deadline);
    cancel?.removeEventListener('abort', onCancel);
  }
}
