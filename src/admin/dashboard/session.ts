// Dashboard sessions: a signed cookie instead of a server-side table, because the request that logs in
// and the ones that follow may land on different shards (every HTTP/1.1 connection is placed on its
// own). The key is derived from SharedState's per-process secret, so every shard checks every cookie,
// and from admin.token, so a session never outlives the token it was opened with. A restart draws a
// new secret and ends every session.
//
// Cookie value: v1.<expiry, unix seconds>.<nonce>.<HMAC-SHA256(key, "v1.<expiry>.<nonce>")>, base64url.
// The CSRF token is HMAC(key, "csrf" + nonce): bound to the session, nothing stored, and useless without
// the cookie (and the cookie useless for a state change without it).
import { createHmac, randomBytes } from 'node:crypto';
import type { HeaderList } from '../../shared/http-types.ts';
import { tokensEqual } from '../access.ts';

export const SESSION_COOKIE = 'quiclb_dashboard';
/** A session lasts a working day; then the operator logs in again. */
export const SESSION_TTL_S = 12 * 60 * 60;
/** The cookie is sent only to the dashboard's own paths, never with requests proxied to Moodle. */
export const SESSION_COOKIE_PATH = '/dashboard';

export interface Session {
  nonce: string;
  expires: number;
  /** The value the page must send back in X-Quiclb-Csrf (or a "csrf" form field) with every POST. */
  csrf: string;
}

export class SessionKeys {
  private readonly key: Buffer;

  constructor(secret: Buffer, adminToken: string | undefined) {
    this.key = createHmac('sha256', secret).update('quiclb dashboard session\0').update(adminToken ?? '').digest();
  }

  private mac(text: string): string {
    return createHmac('sha256', this.key).update(text).digest('base64url');
  }

  create(nowMs = Date.now()): { session: Session; cookieValue: string } {
    const nonce = randomBytes(18).toString('base64url');
    const expires = Math.floor(nowMs / 1000) + SESSION_TTL_S;
    const body = `v1.${expires}.${nonce}`;
    return { session: { nonce, expires, csrf: this.mac(`csrf${nonce}`) }, cookieValue: `${body}.${this.mac(body)}` };
  }

  /** The session a cookie value stands for, or undefined when forged, malformed or expired. */
  verify(cookieValue: string, nowMs = Date.now()): Session | undefined {
    const m = /^v1\.([0-9]{1,12})\.([A-Za-z0-9_-]{24})\.([A-Za-z0-9_-]{43})$/.exec(cookieValue);
    if (m === null) return undefined;
    const [, expiresText, nonce, mac] = m;
    if (!tokensEqual(mac, this.mac(`v1.${expiresText}.${nonce}`))) return undefined;
    const expires = Number(expiresText);
    if (expires * 1000 <= nowMs) return undefined;
    return { nonce, expires, csrf: this.mac(`csrf${nonce}`) };
  }

  csrfMatches(session: Session, given: string | undefined): boolean {
    return given !== undefined && given !== '' && tokensEqual(given, session.csrf);
  }
}

/** RFC 6265 §5.4: every Cookie field line, "a=b; c=d" pairs; the first `name` wins. */
export function cookieValue(headers: HeaderList, name: string): string | undefined {
  for (const [k, v] of headers) {
    if (k !== 'cookie') continue;
    for (const pair of v.split(';')) {
      const eq = pair.indexOf('=');
      if (eq !== -1 && pair.slice(0, eq).trim() === name) return pair.slice(eq + 1).trim();
    }
  }
  return undefined;
}

/**
 * RFC 6265bis: HttpOnly keeps it from scripts, SameSite=Strict keeps other sites' pages from making the
 * browser send it at all, Secure on HTTPS. Max-Age=0 deletes it.
 */
export function sessionCookieHeader(value: string, secure: boolean, maxAgeS = SESSION_TTL_S): string {
  return `${SESSION_COOKIE}=${value}; Path=${SESSION_COOKIE_PATH}; Max-Age=${maxAgeS}; HttpOnly; SameSite=Strict${secure ? '; Secure' : ''}`;
}
