// Why an HTTP/2 request body or response ended early. The request body Readable is destroyed with one of
// these (never ended cleanly), so whoever streams it to a backend sees an aborted upload, not a short one.
// Callers branch on `code` (class identity does not cross threads).

export type H2FrontendErrorCode =
  /** The client sent RST_STREAM before the request body ended. */
  | 'QUICLB_H2_CLIENT_RESET'
  /** The client's connection closed (or was closed) before the request body ended. */
  | 'QUICLB_H2_CONNECTION_CLOSED'
  /** The request body paused longer than server.readTimeout. */
  | 'QUICLB_H2_READ_TIMEOUT'
  /** The client did not read the response for server.writeTimeout. */
  | 'QUICLB_H2_WRITE_TIMEOUT'
  /** quiclb reset the stream itself (FrontResponse.abort, or the response finished before the body). */
  | 'QUICLB_H2_STREAM_RESET';

export class H2FrontendError extends Error {
  readonly code: H2FrontendErrorCode;

  constructor(code: H2FrontendErrorCode, message: string) {
    super(message);
    this.name = 'H2FrontendError';
    this.code = code;
  }
}

export function clientResetError(rstCode: number): H2FrontendError {
  return new H2FrontendError('QUICLB_H2_CLIENT_RESET', `the client reset the HTTP/2 stream (error code ${rstCode}) before the request finished`);
}

export function connectionClosedError(): H2FrontendError {
  return new H2FrontendError('QUICLB_H2_CONNECTION_CLOSED', 'the client HTTP/2 connection closed before the request finished');
}

export function readTimeoutError(ms: number): H2FrontendError {
  return new H2FrontendError(
    'QUICLB_H2_READ_TIMEOUT',
    `the request body paused for more than server.readTimeout (${ms} ms); raise server.readTimeout if clients upload this slowly`,
  );
}

export function writeTimeoutError(ms: number): H2FrontendError {
  return new H2FrontendError(
    'QUICLB_H2_WRITE_TIMEOUT',
    `the client read nothing of the response for server.writeTimeout (${ms} ms); raise server.writeTimeout for clients this slow`,
  );
}

export function streamResetError(): H2FrontendError {
  return new H2FrontendError('QUICLB_H2_STREAM_RESET', 'quiclb reset the HTTP/2 stream before the request body ended');
}
