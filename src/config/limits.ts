// The limits and timeouts every frontend enforces (HTTP/1.1, HTTP/2, HTTP/3), built once from the config
// and handed to all three the same way, so a limit cannot apply to one protocol and be forgotten by another.
import type { Config } from './types.ts';

export interface FrontendLimits {
  /** Largest decoded request header section in bytes (names + values + 32 per field, as RFC 9113 §6.5.2 counts). 431 above it. */
  maxHeaderSize: number;
  /** Most header fields in one request (a cheap bound on per-field work). */
  maxHeaderCount: number;
  /** Largest request body; 0 = unlimited. 413 above it. */
  maxBodySize: number;
  /** Time to send a complete request header section; also the longest pause inside a request body. */
  readTimeoutMs: number;
  /** A response the client does not read from for this long is dropped. */
  writeTimeoutMs: number;
  /** An idle keep-alive connection (no request in flight) is closed after this. */
  idleTimeoutMs: number;
  /** TLS handshakes (and the first bytes of a plain connection) must finish within this. */
  handshakeTimeoutMs: number;
  /**
   * HTTP/2 and HTTP/3 stream resets (client RST_STREAM / RESET_STREAM / STOP_SENDING on requests that had
   * not finished) allowed per connection within resetWindowMs before the connection is closed
   * (HTTP/2 GOAWAY ENHANCE_YOUR_CALM, HTTP/3 H3_EXCESSIVE_LOAD). CVE-2023-44487.
   */
  maxResetsPerWindow: number;
  /** The same budget per client address, over all its connections on every shard (a campus NAT holds many users). */
  maxResetsPerClientPerWindow: number;
  resetWindowMs: number;
  /** Concurrent streams a client may open per HTTP/2 connection. */
  maxConcurrentStreams: number;
  /**
   * WebSocket over HTTP/2 and HTTP/3 (websocket.enabled): SETTINGS_ENABLE_CONNECT_PROTOCOL is sent and
   * extended CONNECT with `:protocol websocket` accepted (RFC 8441, RFC 9220). Off: neither is offered, and
   * a `:protocol` is malformed as before.
   */
  extendedConnect: boolean;
}

export function frontendLimits(config: Config): FrontendLimits {
  const s = config.server;
  return {
    maxHeaderSize: s.maxHeaderSize,
    maxHeaderCount: 256,
    maxBodySize: s.maxBodySize,
    readTimeoutMs: s.readTimeoutMs,
    writeTimeoutMs: s.writeTimeoutMs,
    idleTimeoutMs: s.idleTimeoutMs,
    handshakeTimeoutMs: Math.min(s.readTimeoutMs, 10_000),
    maxResetsPerWindow: 200,
    maxResetsPerClientPerWindow: 800,
    resetWindowMs: 10_000,
    maxConcurrentStreams: 128,
    extendedConnect: config.websocket.enabled,
  };
}
