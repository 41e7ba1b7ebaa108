// The node:http2 session options for one client connection, from the frontend limits. nghttp2's own flood
// guards stay on with explicit values (node's defaults unless said otherwise), so that a change of node's
// defaults cannot loosen them unnoticed.
import type { ServerSessionOptions } from 'node:http2';
import type { FrontendLimits } from '../../config/limits.ts';

/** :method, :scheme, :authority, :path and :protocol: node counts them as fields. */
const PSEUDO_HEADER_FIELDS = 5;

export function sessionOptions(limits: FrontendLimits): ServerSessionOptions {
  return {
    settings: {
      // RFC 9113 §6.5.2. nghttp2 enforces it once the client acknowledged our SETTINGS (RST_STREAM
      // ENHANCE_YOUR_CALM); before that request-head.ts answers 431.
      maxHeaderListSize: limits.maxHeaderSize,
      maxConcurrentStreams: limits.maxConcurrentStreams,
      enablePush: false,
      // RFC 8441 §3: WebSocket over HTTP/2 (extended CONNECT), when websocket.enabled. nghttp2 then accepts
      // :protocol on CONNECT requests (with :scheme and :path) and still refuses it anywhere else.
      enableConnectProtocol: limits.extendedConnect,
    },
    // Fields per request: nghttp2 resets past this; request-head.ts answers 431 past maxHeaderCount.
    maxHeaderListPairs: limits.maxHeaderCount + PSEUDO_HEADER_FIELDS,
    // Header tables, open streams, header blocks being received and DATA queued to send, in MiB; new
    // streams are refused past it. It is also what bounds a first flight of requests sent before the
    // client acknowledged SETTINGS_MAX_HEADER_LIST_SIZE. Node's default.
    maxSessionMemory: 10,
    // Frames nghttp2 rejects (bad PRIORITY, WINDOW_UPDATE on closed streams, ...) before it closes the
    // session with ENHANCE_YOUR_CALM. Node's default is 1000; a client that sends a hundred bad frames
    // has no use for the connection.
    maxSessionInvalidFrames: 100,
    // Streams nghttp2 refused (over SETTINGS_MAX_CONCURRENT_STREAMS, malformed) before it closes the session.
    maxSessionRejectedStreams: 100,
    // PING flood (CVE-2019-9512) and SETTINGS flood (CVE-2019-9515): node's defaults.
    maxOutstandingPings: 10,
    maxSettings: 32,
    // nghttp2's own Rapid Reset limiter (token bucket of RST_STREAM frames received): a backstop at twice
    // the budget that session.ts counts more precisely (only resets of unfinished responses).
    streamResetBurst: 2 * limits.maxResetsPerWindow,
    streamResetRate: Math.max(1, Math.ceil((2 * limits.maxResetsPerWindow * 1000) / limits.resetWindowMs)),
  };
}
