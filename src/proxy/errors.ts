// Who caused a failed forward, and what the client sees. undici reports failures with stable `code`
// strings (lib/core/errors.js); we branch on those, never on instanceof (class identity does not cross
// threads and differs between undici copies).
import { clientErrorStatus, isClientErrorCode, type ClientErrorCode } from '../shared/client-errors.ts';

export type FailureKind = 'refused' | 'timeout' | 'reset' | 'other';

export interface ClassifiedFailure {
  kind: FailureKind;
  status: 502 | 504;
  code: string;
}

// FastCGI backends (src/fastcgi/errors.ts) report socket failures under the kernel's names, as undici does, and
// their own conditions as QUICLB_FCGI_*: a php-fpm whose children are all busy past the queue timeout is a timeout.
const TIMEOUT_CODES = new Set([
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
  'ETIMEDOUT',
  'QUICLB_FCGI_CONNECT_TIMEOUT',
  'QUICLB_FCGI_HEADERS_TIMEOUT',
  'QUICLB_FCGI_BODY_TIMEOUT',
  'QUICLB_FCGI_QUEUE_TIMEOUT',
]);
const REFUSED_CODES = new Set(['ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN', 'EACCES', 'QUICLB_FCGI_QUEUE_FULL']);
const RESET_CODES = new Set(['ECONNRESET', 'EPIPE', 'UND_ERR_SOCKET', 'UND_ERR_CLOSED', 'QUICLB_FCGI_POOL_CLOSED']);
/**
 * The request could not be sent as given (undici refused it; its body gave a length other than declared):
 * the request is at fault, not the backend.
 */
const REQUEST_CODES = new Set(['UND_ERR_INVALID_ARG', 'UND_ERR_NOT_SUPPORTED', 'UND_ERR_REQ_CONTENT_LENGTH_MISMATCH', 'QUICLB_FCGI_REQUEST_BODY']);

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
  // A FastCGI body or spool failure wraps the frontend's own ClientError as its cause.
  const client = clientErrorIn(err);
  if (client !== undefined) return { status: clientErrorStatus(client.code), text: client.message };
  const code = errorCode(err);
  if (REQUEST_CODES.has(code)) return { status: 400, text: `Bad Request: ${(err as Error).message}` };
  if (code === 'QUICLB_FCGI_NO_SCRIPT') return { status: 404, text: 'Not Found: no PHP script answers this path' };
  return undefined;
}

function clientErrorIn(err: unknown): { code: ClientErrorCode; message: string } | undefined {
  let e = err as { code?: unknown; cause?: unknown; message?: unknown } | undefined;
  for (let depth = 0; e && depth < 4; depth++) {
    if (isClientErrorCode(e.code)) return { code: e.code, message: String(e.message) };
    e = e.cause as typeof e;
  }
  return undefined;
}

/** RFC 9110 §9.2.2 idempotent methods. */
const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE', 'PUT', 'DELETE']);

export function isIdempotent(method: string): boolean {
  return IDEMPOTENT.has(method);
}
