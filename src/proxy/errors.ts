// Who caused a failed forward, and what the client sees. undici reports failures with stable `code`
// strings (lib/core/errors.js); we branch on those, never on instanceof (class identity does not cross
// threads and differs between undici copies).
import { clientErrorStatus, isClientErrorCode } from '../shared/client-errors.ts';

export type FailureKind = 'refused' | 'timeout' | 'reset' | 'other';

export interface ClassifiedFailure {
  kind: FailureKind;
  status: 502 | 504;
  code: string;
}

const TIMEOUT_CODES = new Set(['UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_BODY_TIMEOUT', 'ETIMEDOUT']);
const REFUSED_CODES = new Set(['ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN']);
const RESET_CODES = new Set(['ECONNRESET', 'EPIPE', 'UND_ERR_SOCKET', 'UND_ERR_CLOSED']);
/** undici refused to send the request as given: the request is at fault, not the backend. */
const REQUEST_CODES = new Set(['UND_ERR_INVALID_ARG', 'UND_ERR_NOT_SUPPORTED', 'UND_ERR_REQ_CONTENT_LENGTH_MISMATCH']);

export function errorCode(err: unknown): string {
  let e = err as { code?: unknown; cause?: unknown } | undefined;
  for (let depth = 0; e && depth < 4; depth++) {
    if (typeof e.code === 'string' && e.code !== 'UND_ERR' && e.code !== 'GenericFailure') return e.code;
    e = e.cause as typeof e;
  }
  return 'UNKNOWN';
}

/** A backend's failure: how it maps to 502/504. */
export function classifyFailure(err: unknown): ClassifiedFailure {
  const code = errorCode(err);
  if (TIMEOUT_CODES.has(code)) return { kind: 'timeout', status: 504, code };
  if (REFUSED_CODES.has(code)) return { kind: 'refused', status: 502, code };
  if (RESET_CODES.has(code)) return { kind: 'reset', status: 502, code };
  return { kind: 'other', status: 502, code };
}

export interface ClientFault {
  status: number;
  text: string;
}

/**
 * The status to answer when `err` is the client's doing (it left, its body failed, or undici refused the
 * request as malformed), or undefined when it is the backend's.
 */
export function clientFault(err: unknown, clientLeft: boolean): ClientFault | undefined {
  if (clientLeft) return { status: 499, text: 'Client Closed Request' };
  const code = errorCode(err);
  if (isClientErrorCode(code)) return { status: clientErrorStatus(code), text: (err as Error).message };
  if (REQUEST_CODES.has(code)) return { status: 400, text: `Bad Request: ${(err as Error).message}` };
  return undefined;
}

/** RFC 9110 §9.2.2 idempotent methods. */
const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE', 'PUT', 'DELETE']);

export function isIdempotent(method: string): boolean {
  return IDEMPOTENT.has(method);
}
