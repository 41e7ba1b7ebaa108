// How a failed backend attempt maps to what the client sees. undici reports failures with stable
// `code` strings (lib/core/errors.js); we branch on those, never on instanceof (class identity does
// not cross threads and differs between undici copies).

export type FailureKind = 'refused' | 'timeout' | 'reset' | 'other';

export interface ClassifiedFailure {
  kind: FailureKind;
  /** Nothing from the backend reached the client yet, so an idempotent request may be retried. */
  beforeResponse: boolean;
  status: 502 | 504;
  code: string;
}

const TIMEOUT_CODES = new Set(['UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_BODY_TIMEOUT', 'ETIMEDOUT']);
const REFUSED_CODES = new Set(['ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN']);
const RESET_CODES = new Set(['ECONNRESET', 'EPIPE', 'UND_ERR_SOCKET', 'UND_ERR_CLOSED']);

export function errorCode(err: unknown): string {
  let e = err as { code?: unknown; cause?: unknown } | undefined;
  for (let depth = 0; e && depth < 4; depth++) {
    if (typeof e.code === 'string' && e.code !== 'UND_ERR' && e.code !== 'GenericFailure') return e.code;
    e = e.cause as typeof e;
  }
  return 'UNKNOWN';
}

export function classifyFailure(err: unknown, beforeResponse: boolean): ClassifiedFailure {
  const code = errorCode(err);
  if (TIMEOUT_CODES.has(code)) return { kind: 'timeout', beforeResponse, status: 504, code };
  if (REFUSED_CODES.has(code)) return { kind: 'refused', beforeResponse, status: 502, code };
  if (RESET_CODES.has(code)) return { kind: 'reset', beforeResponse, status: 502, code };
  return { kind: 'other', beforeResponse, status: 502, code };
}

/** RFC 9110 §9.2.2 idempotent methods. */
const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE', 'PUT', 'DELETE']);

export function isIdempotent(method: string): boolean {
  return IDEMPOTENT.has(method);
}
