// HTTP/3 and QPACK application error codes (RFC 9114 §8.1, RFC 9204 §6) and the one error type the HTTP/3 decoders
// throw. Every malformed input becomes an H3Error: callers never see a RangeError or TypeError from decoding.

export const H3_NO_ERROR = 0x100;
export const H3_GENERAL_PROTOCOL_ERROR = 0x101;
export const H3_INTERNAL_ERROR = 0x102;
export const H3_STREAM_CREATION_ERROR = 0x103;
export const H3_CLOSED_CRITICAL_STREAM = 0x104;
export const H3_FRAME_UNEXPECTED = 0x105;
export const H3_FRAME_ERROR = 0x106;
export const H3_EXCESSIVE_LOAD = 0x107;
export const H3_ID_ERROR = 0x108;
export const H3_SETTINGS_ERROR = 0x109;
export const H3_MISSING_SETTINGS = 0x10a;
export const H3_REQUEST_REJECTED = 0x10b;
export const H3_REQUEST_CANCELLED = 0x10c;
export const H3_REQUEST_INCOMPLETE = 0x10d;
export const H3_MESSAGE_ERROR = 0x10e;
export const H3_CONNECT_ERROR = 0x10f;
export const H3_VERSION_FALLBACK = 0x110;

export const QPACK_DECOMPRESSION_FAILED = 0x200;
export const QPACK_ENCODER_STREAM_ERROR = 0x201;
export const QPACK_DECODER_STREAM_ERROR = 0x202;

const NAMES: Record<number, string> = {
  [H3_NO_ERROR]: 'H3_NO_ERROR',
  [H3_GENERAL_PROTOCOL_ERROR]: 'H3_GENERAL_PROTOCOL_ERROR',
  [H3_INTERNAL_ERROR]: 'H3_INTERNAL_ERROR',
  [H3_STREAM_CREATION_ERROR]: 'H3_STREAM_CREATION_ERROR',
  [H3_CLOSED_CRITICAL_STREAM]: 'H3_CLOSED_CRITICAL_STREAM',
  [H3_FRAME_UNEXPECTED]: 'H3_FRAME_UNEXPECTED',
  [H3_FRAME_ERROR]: 'H3_FRAME_ERROR',
  [H3_EXCESSIVE_LOAD]: 'H3_EXCESSIVE_LOAD',
  [H3_ID_ERROR]: 'H3_ID_ERROR',
  [H3_SETTINGS_ERROR]: 'H3_SETTINGS_ERROR',
  [H3_MISSING_SETTINGS]: 'H3_MISSING_SETTINGS',
  [H3_REQUEST_REJECTED]: 'H3_REQUEST_REJECTED',
  [H3_REQUEST_CANCELLED]: 'H3_REQUEST_CANCELLED',
  [H3_REQUEST_INCOMPLETE]: 'H3_REQUEST_INCOMPLETE',
  [H3_MESSAGE_ERROR]: 'H3_MESSAGE_ERROR',
  [H3_CONNECT_ERROR]: 'H3_CONNECT_ERROR',
  [H3_VERSION_FALLBACK]: 'H3_VERSION_FALLBACK',
  [QPACK_DECOMPRESSION_FAILED]: 'QPACK_DECOMPRESSION_FAILED',
  [QPACK_ENCODER_STREAM_ERROR]: 'QPACK_ENCODER_STREAM_ERROR',
  [QPACK_DECODER_STREAM_ERROR]: 'QPACK_DECODER_STREAM_ERROR',
};

/** Stable name of an error code (for logs and metrics); unknown codes print as hex. */
export function h3ErrorName(code: number): string {
  return NAMES[code] ?? `0x${code.toString(16)}`;
}

export type H3ErrorScope = 'stream' | 'connection';

/**
 * A protocol violation. `scope` says what the caller must tear down: the one stream (RESET_STREAM/STOP_SENDING with
 * `code`) or the whole connection (CONNECTION_CLOSE with application error `code`).
 */
export class H3Error extends Error {
  readonly code: number;
  readonly scope: H3ErrorScope;
  /** Stable string form of `code`, e.g. 'H3_FRAME_ERROR' (checked by code, not instanceof, across threads). */
  readonly codeName: string;
  /**
   * For a stream error on a request: the HTTP status the server answers with instead of resetting the
   * response (431 for an oversized header section, RFC 6585 §5); undefined: reset with `code`.
   */
  readonly status: number | undefined;

  constructor(code: number, scope: H3ErrorScope, message: string, status?: number) {
    super(message);
    this.name = 'H3Error';
    this.code = code;
    this.scope = scope;
    this.codeName = h3ErrorName(code);
    this.status = status;
  }
}

/** Shorthand for the common case: a violation that closes the connection. */
export function connectionError(code: number, message: string): H3Error {
  return new H3Error(code, 'connection', message);
}

/** Shorthand for a violation confined to one request stream. */
export function streamError(code: number, message: string): H3Error {
  return new H3Error(code, 'stream', message);
}

/**
 * A request header section larger than we accept (RFC 9114 §4.2.2): the request is refused with 431
 * before anything past the HTTP/3 layer sees it; the read side is stopped with H3_MESSAGE_ERROR.
 */
export function fieldSectionTooLarge(message: string): H3Error {
  return new H3Error(H3_MESSAGE_ERROR, 'stream', message, 431);
}
