// The request line's target and the Host field, made into the one (authority, path) pair the pipeline and the
// backend both see (RFC 9112 §3.2-3.3): absolute-form's authority replaces Host, origin-form keeps it, and
// exactly one Host field is required on HTTP/1.1. A request that cannot be made consistent is refused here.

export type TargetResult =
  | { ok: true; authority: string; path: string }
  | { ok: false; status: 400 | 405; reason: string };

// RFC 3986 reg-name / IP-literal / IPv4 with an optional port; no userinfo.
const AUTHORITY_RE = /^(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9\-._~!$&'()*+,;=%]*)(?::\d{0,5})?$/;

export function isValidAuthority(value: string): boolean {
  return value.length <= 255 && AUTHORITY_RE.test(value);
}

/**
 * `hosts`: every Host field value the request carried. `http10`: HTTP/1.0 may omit Host (RFC 9112 §3.2
 * requires it from 1.1 clients only).
 */
export function resolveTarget(method: string, url: string, hosts: readonly string[], http10: boolean): TargetResult {
  if (hosts.length > 1) return { ok: false, status: 400, reason: 'more than one Host field (RFC 9112 §3.2)' };
  if (hosts.length === 0 && !http10) return { ok: false, status: 400, reason: 'an HTTP/1.1 request needs a Host field (RFC 9112 §3.2)' };
  const host = hosts.length === 1 ? hosts[0] : '';
  if (!isValidAuthority(host)) return { ok: false, status: 400, reason: 'invalid Host field' };
  const first = url.charCodeAt(0);
  if (first === 47 /* '/' */) return { ok: true, authority: host, path: url };
  if (method === 'CONNECT') return { ok: false, status: 405, reason: 'CONNECT is not supported: quiclb is not a forward proxy' };
  if (url === '*') {
    if (method !== 'OPTIONS') return { ok: false, status: 400, reason: 'the asterisk-form target is only for OPTIONS (RFC 9112 §3.2.4)' };
    return { ok: true, authority: host, path: '*' };
  }
  // absolute-form (RFC 9112 §3.2.2): a server MUST accept it; its authority wins over Host (§3.2.2).
  const m = /^(https?):\/\/([^/?#]*)([^#]*)$/i.exec(url);
  if (m === null) return { ok: false, status: 400, reason: 'invalid request target' };
  const authority = m[2];
  if (authority === '' || authority.includes('@') || !isValidAuthority(authority)) {
    return { ok: false, status: 400, reason: 'invalid authority in the absolute-form target' };
  }
  const rest = m[3];
  const path = rest === '' ? '/' : rest.charCodeAt(0) === 63 /* '?' */ ? `/${rest}` : rest;
  return { ok: true, authority, path };
}
