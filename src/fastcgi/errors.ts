// The one error type of src/fastcgi. The proxy classifies failures by `code` (not instanceof: class identity
// does not survive postMessage): socket-level codes keep the kernel's names so that FastCGI and HTTP backends
// read the same (ECONNREFUSED, ECONNRESET, ETIMEDOUT, EPIPE, ...); the rest are QUICLB_FCGI_* codes below.

export type FastCgiErrorCode =
  /** The response record stream broke the FastCGI 1.0 rules (bad version, unknown type, bad lengths). */
  | 'QUICLB_FCGI_PROTOCOL'
  /** The CGI header block PHP wrote on STDOUT is malformed or larger than the bound. */
  | 'QUICLB_FCGI_BAD_HEADER'
  /** END_REQUEST with a protocolStatus other than REQUEST_COMPLETE (CANT_MPX_CONN, OVERLOADED, UNKNOWN_ROLE). */
  | 'QUICLB_FCGI_REJECTED'
  /** Every connection of the pool stayed busy for the queue timeout. */
  | 'QUICLB_FCGI_QUEUE_TIMEOUT'
  /** The pool's wait queue is full (maxQueue). */
  | 'QUICLB_FCGI_QUEUE_FULL'
  /** Connecting took longer than connectTimeoutMs. */
  | 'QUICLB_FCGI_CONNECT_TIMEOUT'
  /** No response headers within headersTimeoutMs after the request was sent. */
  | 'QUICLB_FCGI_HEADERS_TIMEOUT'
  /** No response bytes for bodyTimeoutMs while the response body was flowing (and not paused). */
  | 'QUICLB_FCGI_BODY_TIMEOUT'
  /** The request body stream failed, or gave more or fewer bytes than contentLength. */
  | 'QUICLB_FCGI_REQUEST_BODY'
  /** The pool was closed. */
  | 'QUICLB_FCGI_POOL_CLOSED'
  /** fastCgiFetch: the path runs no PHP script (not found, refused, static file). */
  | 'QUICLB_FCGI_NO_SCRIPT'
  /** The caller aborted the request (controller.abort or its AbortSignal) without a reason of its own. */
  | 'QUICLB_FCGI_ABORTED'
  /** A socket error: the errno name (ECONNREFUSED, ECONNRESET, EPIPE, ETIMEDOUT, EACCES, ...). */
  | (string & {});

export class FastCgiError extends Error {
  readonly code: FastCgiErrorCode;

  constructor(code: FastCgiErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'FastCgiError';
    this.code = code;
  }
}

export function isFastCgiError(err: unknown): err is FastCgiError {
  return err instanceof Error && err.name === 'FastCgiError' && typeof (err as { code?: unknown }).code === 'string';
}
