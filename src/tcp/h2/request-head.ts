// The request head of one HTTP/2 stream, from node's flat raw header array ([name, value, name, value, ...],
// pseudo-header fields first) to what the pipeline gets. Sans-IO.
//
// nghttp2 (1.70, in Node 24.21) has already reset with PROTOCOL_ERROR what RFC 9113 §8.2-§8.3 makes
// malformed at its level (pinned down by test/integration/h2-malformed.test.ts): uppercase field names,
// connection-specific fields (connection, keep-alive, proxy-connection, transfer-encoding, upgrade), `te`
// other than "trailers", missing, repeated, unknown or late pseudo-header fields, :protocol (unless we
// enabled extended CONNECT, websocket.enabled; then on any method but CONNECT), two host fields, an empty
// or userinfo-carrying :authority, a :path that is empty, relative or holds a space, `*` with a method
// other than OPTIONS, CONNECT with :path or :scheme (unless extended),
// a repeated content-length or one that disagrees with the DATA received, and a request with neither
// :authority nor host. Fields whose value holds CR, LF, NUL or DEL, starts or ends with whitespace, or
// whose name holds a space or a colon, are dropped by nghttp2/node before the request reaches JavaScript
// (nghttp2's default for an invalid regular field is to ignore it), so they never reach a backend either.
//
// What is left for this file:
//   - :authority and host that differ: malformed (RFC 9113 §8.3.1, "MUST contain the same value"),
//     answered 400 without dispatching. Compared without regard to case (host names are
//     case-insensitive, RFC 3986 §3.2.2); the backend gets :authority's spelling either way.
//   - CONNECT (non-extended, RFC 9113 §8.5): quiclb tunnels nothing, 405.
//   - extended CONNECT (RFC 8441 §4): `:protocol websocket` is a WebSocket handshake, handed on as a GET
//     with upgrade 'websocket' (what every frontend hands on, src/shared/http-types.ts); any other
//     protocol is 501 Not Implemented.
//   - server.maxHeaderSize over the decoded field section, counted as RFC 9113 §6.5.2 does (name +
//     value + 32 per field, pseudo-header fields included), and a field count bound: 431. nghttp2 applies
//     our SETTINGS_MAX_HEADER_LIST_SIZE only once the client has acknowledged our SETTINGS; a request in
//     the client's first flight (or from a client that never acknowledges) gets here at any size up to
//     maxSessionMemory, so this check is what bounds it.
import type { HeaderList } from '../../shared/http-types.ts';

export interface RequestHead {
  kind: 'request';
  method: string;
  /** :authority, else host: exactly one non-empty host the request is for. */
  authority: string;
  path: string;
  /** Regular fields in arrival order, every host field replaced by one `host` equal to authority, first. */
  headers: HeaderList;
  /** An extended CONNECT with `:protocol websocket` (method is then GET). */
  websocket: boolean;
}

export interface HeadRejection {
  kind: 'reject';
  status: 400 | 405 | 431 | 501;
  /** Said to the client in the response body. */
  reason: string;
}

export interface HeadLimits {
  /** Largest decoded field section in bytes (names + values + 32 per field). */
  maxHeaderSize: number;
  /** Most regular (non-pseudo) fields. */
  maxHeaderCount: number;
}

/** Decoded size of a field section as RFC 9113 §6.5.2 counts it. */
export function fieldSectionSize(raw: readonly string[]): number {
  let size = 0;
  for (let i = 0; i < raw.length; i++) size += raw[i].length;
  return size + 16 * raw.length; // 32 per field, two array entries per field
}

function sameHost(a: string, b: string): boolean {
  return a.length === b.length && (a === b || a.toLowerCase() === b.toLowerCase());
}

export function readRequestHead(raw: readonly string[], limits: HeadLimits): RequestHead | HeadRejection {
  const size = fieldSectionSize(raw);
  if (size > limits.maxHeaderSize) {
    return { kind: 'reject', status: 431, reason: `The request header section is ${size} bytes; this server accepts at most ${limits.maxHeaderSize}.` };
  }
  let method = '';
  let authority: string | undefined;
  let path = '';
  let host: string | undefined;
  let protocol: string | undefined;
  let i = 0;
  // RFC 9113 §8.3: pseudo-header fields come first (nghttp2 has checked that).
  for (; i < raw.length && raw[i].charCodeAt(0) === 58 /* ':' */; i += 2) {
    const name = raw[i];
    if (name === ':method') method = raw[i + 1];
    else if (name === ':authority') authority = raw[i + 1];
    else if (name === ':path') path = raw[i + 1];
    else if (name === ':protocol') protocol = raw[i + 1];
  }
  if ((raw.length - i) / 2 > limits.maxHeaderCount) {
    return { kind: 'reject', status: 431, reason: `The request has ${(raw.length - i) / 2} header fields; this server accepts at most ${limits.maxHeaderCount}.` };
  }
  const headers: HeaderList = [['host', '']];
  for (; i < raw.length; i += 2) {
    const name = raw[i];
    if (name === 'host') {
      host = raw[i + 1];
      continue;
    }
    headers.push([name, raw[i + 1]]);
  }
  if (authority !== undefined && host !== undefined && !sameHost(authority, host)) {
    return { kind: 'reject', status: 400, reason: 'The request is malformed: its :authority and Host differ (RFC 9113 section 8.3.1).' };
  }
  let websocket = false;
  if (method === 'CONNECT') {
    if (protocol === undefined) {
      return { kind: 'reject', status: 405, reason: 'CONNECT is not supported: this server proxies HTTP requests, it does not open tunnels.' };
    }
    // RFC 8441 §4 (nghttp2 has checked :scheme and :path are present). Protocol names are case-sensitive
    // tokens from the IANA Upgrade Token registry: "websocket" is the registered one.
    if (protocol !== 'websocket') return { kind: 'reject', status: 501, reason: `Extended CONNECT for ${JSON.stringify(protocol)} is not supported; only "websocket" is.` };
    method = 'GET';
    websocket = true;
  }
  const target = authority ?? host ?? '';
  // nghttp2 refuses a request with neither; kept so that `headers` never carries an empty host.
  if (target === '') return { kind: 'reject', status: 400, reason: 'The request names no host: send :authority.' };
  headers[0][1] = target;
  return { kind: 'request', method, authority: target, path, headers, websocket };
}
