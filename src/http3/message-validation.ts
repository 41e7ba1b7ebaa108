// Validation of decoded request header and trailer sections (RFC 9114 §4.1.2 malformed messages, §4.2 field
// rules, §4.3.1 request pseudo-headers, §4.4 CONNECT, RFC 9220 extended CONNECT). Every violation is a stream error of type H3_MESSAGE_ERROR:
// RFC 9114 §4.1.2 makes that the required answer (a 400 first is optional), and an intermediary must not
// forward a malformed request, so none of these reaches the pipeline or a backend.
//
// Stricter than the minimum of RFC 9114 §4.2 where forwarding would fail later (RFC 9110 §5.5 lets a
// recipient reject what it cannot forward): field values with any control character other than HTAB,
// a :path outside visible ASCII (RFC 3986 has no raw spaces, controls or octets above 0x7e), an
// :authority or Host that is not a host[:port] (no userinfo, RFC 9114 §4.3.1), and a :scheme other
// than http or https (the only ones quiclb serves).

import { H3_MESSAGE_ERROR, type H3Error, streamError } from './errors.ts';
import type { FieldList } from './qpack/decoder.ts';

/** What the connection needs from a valid request: the declared body length (-1 when absent). */
export interface RequestInfo {
  method: string;
  contentLength: number;
  /** :protocol of an extended CONNECT (RFC 9220), else undefined. */
  protocol: string | undefined;
}

export interface RequestRules {
  /** We sent SETTINGS_ENABLE_CONNECT_PROTOCOL = 1, so :protocol is allowed on CONNECT (RFC 9220 §3). */
  extendedConnect: boolean;
}

const NO_EXTENDED_CONNECT: RequestRules = { extendedConnect: false };

function malformed(reason: string): H3Error {
  return streamError(H3_MESSAGE_ERROR, `malformed message: ${reason}`);
}

// RFC 9110 §5.6.2 tchar, lowercase only (RFC 9114 §4.2: uppercase field names are malformed).
const NAME_CHAR = new Uint8Array(128);
// tchar including uppercase, for :method.
const TOKEN_CHAR = new Uint8Array(128);
for (const ch of "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyz") {
  NAME_CHAR[ch.charCodeAt(0)] = 1;
  TOKEN_CHAR[ch.charCodeAt(0)] = 1;
}
for (const ch of 'ABCDEFGHIJKLMNOPQRSTUVWXYZ') TOKEN_CHAR[ch.charCodeAt(0)] = 1;

function isToken(s: string, table: Uint8Array): boolean {
  if (s.length === 0) return false;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 128 || table[c] === 0) return false;
  }
  return true;
}

/**
 * RFC 9114 §4.2: no NUL, CR or LF, no leading or trailing SP/HTAB; RFC 9110 §5.5: no other control
 * characters either (an HTTP/1.1 backend request could not carry them).
 */
function isValidValue(v: string): boolean {
  const n = v.length;
  if (n === 0) return true;
  let c = v.charCodeAt(0);
  if (c === 0x20 || c === 0x09) return false;
  c = v.charCodeAt(n - 1);
  if (c === 0x20 || c === 0x09) return false;
  for (let i = 0; i < n; i++) {
    c = v.charCodeAt(i);
    if ((c < 0x20 && c !== 0x09) || c === 0x7f) return false;
  }
  return true;
}

/** A request target in origin form (or "*"): visible ASCII only (RFC 3986 §2; RFC 9112 §3.2). */
function isValidPath(p: string): boolean {
  for (let i = 0; i < p.length; i++) {
    const c = p.charCodeAt(i);
    if (c <= 0x20 || c >= 0x7f) return false;
  }
  return true;
}

// RFC 3986 §3.2.2 host (reg-name, IPv4, IP-literal in brackets) and §3.2.3 port: unreserved, pct-encoded,
// sub-delims, ':' and brackets. No '@': userinfo is not allowed in :authority (RFC 9114 §4.3.1).
const AUTHORITY_CHAR = new Uint8Array(128);
for (const ch of "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~%!$&'()*+,;=:[]") AUTHORITY_CHAR[ch.charCodeAt(0)] = 1;

function isValidAuthority(a: string): boolean {
  return isToken(a, AUTHORITY_CHAR);
}

/** RFC 9114 §4.2: connection-specific fields are malformed in HTTP/3 (te is allowed only as "trailers"). */
function checkRegularField(name: string, value: string): void {
  if (!isToken(name, NAME_CHAR)) throw malformed(`invalid field name ${JSON.stringify(name)}`);
  if (!isValidValue(value)) throw malformed(`invalid value for ${name}`);
  switch (name) {
    case 'connection':
    case 'keep-alive':
    case 'proxy-connection':
    case 'transfer-encoding':
    case 'upgrade':
      throw malformed(`connection-specific field ${name}`);
    case 'te':
      if (value !== 'trailers') throw malformed('te other than "trailers"');
      break;
  }
}

/** RFC 9110 §8.6: digits only; a repeated value (list or repeated field) must be identical. Returns -1 if absent. */
function mergeContentLength(previous: number, value: string): number {
  let result = previous;
  for (const part of value.split(',')) {
    const t = part.trim();
    if (t.length === 0 || t.length > 15 || !/^[0-9]+$/.test(t)) throw malformed('invalid content-length');
    const n = Number(t);
    if (result !== -1 && result !== n) throw malformed('conflicting content-length values');
    result = n;
  }
  return result;
}

/** Validates a request header section (pseudo-headers first, in order). Throws H3Error(H3_MESSAGE_ERROR). */
export function validateRequestHeaders(fields: FieldList, rules: RequestRules = NO_EXTENDED_CONNECT): RequestInfo {
  let method: string | null = null;
  let protocol: string | null = null;
  let scheme: string | null = null;
  let authority: string | null = null;
  let path: string | null = null;
  let host: string | null = null;
  let contentLength = -1;
  let regularSeen = false;
  for (let i = 0; i < fields.length; i++) {
    const name = fields[i][0];
    const value = fields[i][1];
    if (name.charCodeAt(0) === 0x3a /* ':' */) {
      // RFC 9114 §4.3: pseudo-headers precede regular fields, appear once, and only the defined ones.
      if (regularSeen) throw malformed(`pseudo-header ${name} after a regular field`);
      if (!isValidValue(value)) throw malformed(`invalid value for ${name}`);
      switch (name) {
        case ':method':
          if (method !== null) throw malformed('duplicate :method');
          method = value;
          break;
        case ':scheme':
          if (scheme !== null) throw malformed('duplicate :scheme');
          scheme = value;
          break;
        case ':authority':
          if (authority !== null) throw malformed('duplicate :authority');
          authority = value;
          break;
        case ':path':
          if (path !== null) throw malformed('duplicate :path');
          path = value;
          break;
        case ':protocol':
          // RFC 9220 §3 (RFC 8441 §4): only after we sent SETTINGS_ENABLE_CONNECT_PROTOCOL (websocket.enabled).
          if (!rules.extendedConnect) throw malformed(':protocol without SETTINGS_ENABLE_CONNECT_PROTOCOL');
          if (protocol !== null) throw malformed('duplicate :protocol');
          if (!isToken(value, TOKEN_CHAR)) throw malformed('invalid :protocol');
          protocol = value;
          break;
        default:
          // :status is response-only.
          throw malformed(`pseudo-header ${name} not allowed in a request`);
      }
      continue;
    }
    regularSeen = true;
    checkRegularField(name, value);
    if (name === 'content-length') contentLength = mergeContentLength(contentLength, value);
    else if (name === 'host') {
      if (host !== null) throw malformed('duplicate host');
      host = value;
    }
  }
  if (method === null) throw malformed('missing :method');
  if (!isToken(method, TOKEN_CHAR)) throw malformed('invalid :method');
  if (protocol !== null && method !== 'CONNECT') throw malformed(':protocol on a request other than CONNECT');
  if (method === 'CONNECT' && protocol === null) {
    // RFC 9114 §4.4: CONNECT carries :authority only.
    if (scheme !== null || path !== null) throw malformed('CONNECT with :scheme or :path');
    if (authority === null || authority.length === 0) throw malformed('CONNECT without :authority');
    return { method, contentLength, protocol: undefined };
  }
  // From here a request with :scheme and :path: every method, and extended CONNECT (RFC 8441 §4: :scheme
  // and :path are required, :authority names the origin as for any request).
  if (scheme === null) throw malformed('missing :scheme');
  if (scheme !== 'https' && scheme !== 'http') throw malformed(`:scheme ${JSON.stringify(scheme)} is not served here`);
  if (path === null) throw malformed('missing :path');
  if (path.length === 0) throw malformed('empty :path');
  // :path is origin-form, or "*" for OPTIONS (RFC 9114 §4.3.1).
  if (path.charCodeAt(0) !== 0x2f && !(path === '*' && method === 'OPTIONS')) throw malformed('invalid :path');
  if (!isValidPath(path)) throw malformed(':path with a space, a control character or a non-ASCII octet');
  // §4.3.1: http and https need an authority, from :authority or Host, non-empty and equal when both present.
  if (authority === null && host === null) throw malformed('missing :authority and host');
  if (authority !== null && !isValidAuthority(authority)) throw malformed('invalid :authority');
  if (host !== null && !isValidAuthority(host)) throw malformed('invalid host');
  if (authority !== null && host !== null && authority !== host) throw malformed(':authority and host differ');
  if (protocol !== null && (authority === null || authority.length === 0)) throw malformed('extended CONNECT without :authority');
  return { method, contentLength, protocol: protocol ?? undefined };
}

/** Validates a trailer section: no pseudo-headers, same field rules as headers. */
export function validateTrailers(fields: FieldList): void {
  for (let i = 0; i < fields.length; i++) {
    const name = fields[i][0];
    if (name.charCodeAt(0) === 0x3a) throw malformed(`pseudo-header ${name} in trailers`);
    checkRegularField(name, fields[i][1]);
  }
}
