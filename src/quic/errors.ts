// The one place where quiche's errors get stable codes. The binding throws plain Errors with
// code 'GenericFailure' and the Rust enum's Debug text as message ("Done", "StreamReset(256)",
// "InvalidStreamState(4)", ...), so callers never match on message text themselves.

export type QuicErrorCode =
  | 'QUIC_DONE'
  | 'QUIC_BUFFER_TOO_SHORT'
  | 'QUIC_UNKNOWN_VERSION'
  | 'QUIC_INVALID_FRAME'
  | 'QUIC_INVALID_PACKET'
  | 'QUIC_INVALID_STATE'
  | 'QUIC_INVALID_STREAM_STATE'
  | 'QUIC_INVALID_TRANSPORT_PARAM'
  | 'QUIC_CRYPTO_FAIL'
  | 'QUIC_TLS_FAIL'
  | 'QUIC_FLOW_CONTROL'
  | 'QUIC_STREAM_LIMIT'
  | 'QUIC_STREAM_STOPPED'
  | 'QUIC_STREAM_RESET'
  | 'QUIC_FINAL_SIZE'
  | 'QUIC_CONGESTION_CONTROL'
  | 'QUIC_ID_LIMIT'
  | 'QUIC_OUT_OF_IDENTIFIERS'
  | 'QUIC_KEY_UPDATE'
  | 'QUIC_UNKNOWN';

const BY_NAME: Record<string, QuicErrorCode> = {
  Done: 'QUIC_DONE',
  BufferTooShort: 'QUIC_BUFFER_TOO_SHORT',
  UnknownVersion: 'QUIC_UNKNOWN_VERSION',
  InvalidFrame: 'QUIC_INVALID_FRAME',
  InvalidPacket: 'QUIC_INVALID_PACKET',
  InvalidState: 'QUIC_INVALID_STATE',
  InvalidStreamState: 'QUIC_INVALID_STREAM_STATE',
  InvalidTransportParam: 'QUIC_INVALID_TRANSPORT_PARAM',
  CryptoFail: 'QUIC_CRYPTO_FAIL',
  TlsFail: 'QUIC_TLS_FAIL',
  FlowControl: 'QUIC_FLOW_CONTROL',
  StreamLimit: 'QUIC_STREAM_LIMIT',
  StreamStopped: 'QUIC_STREAM_STOPPED',
  StreamReset: 'QUIC_STREAM_RESET',
  FinalSize: 'QUIC_FINAL_SIZE',
  CongestionControl: 'QUIC_CONGESTION_CONTROL',
  IdLimit: 'QUIC_ID_LIMIT',
  OutOfIdentifiers: 'QUIC_OUT_OF_IDENTIFIERS',
  KeyUpdate: 'QUIC_KEY_UPDATE',
};

export class QuicError extends Error {
  readonly code: QuicErrorCode;
  /** Application error code carried by StreamReset(n) / StreamStopped(n) / InvalidStreamState(id). */
  readonly value: number | undefined;

  constructor(code: QuicErrorCode, message: string, value?: number) {
    super(message);
    this.name = 'QuicError';
    this.code = code;
    this.value = value;
  }
}

const NAME_RE = /^([A-Za-z]+)(?:\((\d+)\))?/;

/** Turns whatever the binding threw into a QuicError; anything else becomes QUIC_UNKNOWN. */
export function toQuicError(err: unknown): QuicError {
  if (err instanceof QuicError) return err;
  const message = err instanceof Error ? err.message : String(err);
  const m = NAME_RE.exec(message);
  const code = (m && BY_NAME[m[1]]) || 'QUIC_UNKNOWN';
  const value = m && m[2] !== undefined ? Number(m[2]) : undefined;
  return new QuicError(code, `quiche: ${message}`, value);
}

/** Convenience for the hot path: the code only, no allocation of a QuicError when the caller just branches. */
export function quicErrorCode(err: unknown): QuicErrorCode {
  const message = err instanceof Error ? err.message : String(err);
  const m = NAME_RE.exec(message);
  return (m && BY_NAME[m[1]]) || 'QUIC_UNKNOWN';
}
