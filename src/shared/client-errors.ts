// Errors that are the client's doing. A frontend fails a request body stream with one of these when the
// client aborts an upload, stalls it past server.readTimeout, frames it badly or sends too much; the proxy
// answers them 4xx (or drops the exchange when the client is gone) and never counts them against a backend.

export type ClientErrorCode =
  | 'QUICLB_CLIENT_ABORTED' // connection closed or stream reset before the body was complete
  | 'QUICLB_CLIENT_TIMEOUT' // body paused longer than server.readTimeout
  | 'QUICLB_BAD_BODY' // malformed body framing
  | 'QUICLB_BODY_TOO_LARGE'; // past server.maxBodySize

export class ClientError extends Error {
  readonly code: ClientErrorCode;
  constructor(code: ClientErrorCode, message: string) {
    super(message);
    this.name = 'ClientError';
    this.code = code;
  }
}

const STATUS: Record<ClientErrorCode, number> = {
  QUICLB_CLIENT_ABORTED: 400,
  QUICLB_CLIENT_TIMEOUT: 408,
  QUICLB_BAD_BODY: 400,
  QUICLB_BODY_TOO_LARGE: 413,
};

export function isClientErrorCode(code: unknown): code is ClientErrorCode {
  return typeof code === 'string' && code in STATUS;
}

export function clientErrorStatus(code: ClientErrorCode): number {
  return STATUS[code];
}
