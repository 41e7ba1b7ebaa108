// The affinity cookie and the cookie parsing the balancer needs (RFC 6265).
//
// The cookie value is a token derived from the backend's configured id, not its index or address: it
// stays valid across a quiclb restart and a reordering of backendServers, and it tells the client
// nothing about the internal network.
import { createHash } from 'node:crypto';
import type { Backend } from './backend.ts';

/** 16 base64url characters = 96 bits: collisions between configured backends are not a concern. */
export function affinityToken(backend: Pick<Backend, 'id'>): string {
  return createHash('sha256').update(`quiclb:${backend.id}`).digest('base64url').slice(0, 16);
}

/**
 * The Set-Cookie value that pins the client to `backend`. A session cookie (no Expires/Max-Age): it lives
 * as long as the browser session, like Moodle's own MoodleSession cookie.
 *
 * `secure` must be true only when the client connection is TLS (HTTPS over HTTP/1.1, HTTP/2 or HTTP/3).
 * RFC 6265 §4.1.2.5 / §5.4: a user agent returns a Secure cookie only over secure channels, so setting
 * it on a plain-HTTP/1.1 response would make the browser never send it back and stickiness would silently
 * break for cleartext clients. On TLS we always add Secure so the token never leaks over cleartext.
 */
export function setCookieHeader(cookieName: string, backend: Pick<Backend, 'id'>, secure: boolean): string {
  const base = `${cookieName}=${affinityToken(backend)}; Path=/; HttpOnly; SameSite=Lax`;
  return secure ? `${base}; Secure` : base;
}

/**
 * Parse Cookie request header values into name -> value. HTTP/2 and HTTP/3 may split the Cookie header
 * into one field per cookie (RFC 9113 §8.2.3, RFC 9114 §4.2.1), hence a list. Tolerant as RFC 6265 §5.4
 * asks of servers' inputs: pairs without '=' and empty names are skipped, whitespace trimmed, one layer of
 * DQUOTEs removed (§4.1.1 cookie-value). The first occurrence of a name wins: §5.4 orders cookies with
 * longer (more specific) paths first.
 */
export function parseCookies(cookieHeaderValues: readonly string[]): Map<string, string> {
  const out = new Map<string, string>();
  for (const header of cookieHeaderValues) {
    for (const pair of header.split(';')) {
      const eq = pair.indexOf('=');
      if (eq < 0) continue;
      const name = pair.slice(0, eq).trim();
      if (name === '' || out.has(name)) continue;
      out.set(name, unquote(pair.slice(eq + 1).trim()));
    }
  }
  return out;
}

export interface SetCookie {
  name: string;
  value: string;
  /** True when the attributes delete the cookie (Max-Age <= 0 or Expires in the past). */
  expired: boolean;
}

/** Parse one Set-Cookie response value (RFC 6265 §5.2): name, value, and whether it deletes the cookie. */
export function parseSetCookie(header: string, nowMs: number = Date.now()): SetCookie | undefined {
  const parts = header.split(';');
  const first = parts[0];
  const eq = first.indexOf('=');
  if (eq < 0) return undefined;
  const name = first.slice(0, eq).trim();
  if (name === '') return undefined;
  const value = unquote(first.slice(eq + 1).trim());
  let expired = false;
  let maxAgeSeen = false;
  for (let i = 1; i < parts.length; i++) {
    const attr = parts[i];
    const aeq = attr.indexOf('=');
    const key = (aeq < 0 ? attr : attr.slice(0, aeq)).trim().toLowerCase();
    const val = aeq < 0 ? '' : attr.slice(aeq + 1).trim();
    if (key === 'max-age' && /^-?\d+$/.test(val)) {
      // §5.3 step 3: Max-Age takes precedence over Expires.
      maxAgeSeen = true;
      expired = Number(val) <= 0;
    } else if (key === 'expires' && !maxAgeSeen) {
      const t = Date.parse(val);
      if (!Number.isNaN(t)) expired = t <= nowMs;
    }
  }
  return { name, value, expired };
}

function unquote(v: string): string {
  return v.length >= 2 && v.startsWith('"') && v.endsWith('"') ? v.slice(1, -1) : v;
}
