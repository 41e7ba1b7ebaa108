// The client address quiclb acts on (rate limits today; logs, X-Forwarded-For, ip_hash and the admin ACL can
// use the same function): the socket's peer, unless that peer is a trusted proxy (a CDN in front of quiclb),
// in which case the X-Forwarded-For chain it appended to is believed, and only as far as it is written by
// trusted hops. A client's own X-Forwarded-For is never trusted: anyone can write any address there.
import type { HeaderList } from './http-types.ts';
import { type CidrList, parseIp } from './cidr.ts';
import { normalizeIp } from './ip.ts';

/** Hops looked at from the right; the header is bounded by server.maxHeaderSize, this bounds the work. */
export const MAX_FORWARDED_HOPS = 32;

/**
 * The effective client address. Each proxy appends the address it received the request from, so the chain
 * is walked right to left, skipping trusted hops (nginx's `real_ip_recursive on`, Moodle's
 * `reverseproxyignore`); the first untrusted address is the client. When every hop is trusted the leftmost
 * is the client. An entry that is not an IP address ("unknown", garbage) ends the walk at the last trusted
 * hop, which is then limited in the client's place: forging a chain can never pick someone else's address.
 * Returned normalised (normalizeIp: no ::ffff: prefix, lowercase, no brackets or port).
 *
 * `forwardedFor` is the X-Forwarded-For field value; several field lines are one list in order
 * (RFC 9110 §5.3), as forwardedForOf() joins them.
 */
export function resolveClientAddress(socketAddress: string, forwardedFor: string | undefined, trustedProxies: CidrList): string {
  const peer = normalizeIp(socketAddress);
  if (trustedProxies.size === 0 || forwardedFor === undefined || forwardedFor === '') return peer;
  const peerIp = parseIp(peer);
  if (peerIp === undefined || !trustedProxies.contains(peerIp)) return peer;
  let client = peer;
  let end = forwardedFor.length;
  for (let hops = 0; hops < MAX_FORWARDED_HOPS && end > 0; hops++) {
    const comma = forwardedFor.lastIndexOf(',', end - 1);
    const entry = stripPort(forwardedFor.slice(comma + 1, end).trim());
    end = comma < 0 ? 0 : comma;
    if (entry === '') continue; // "a, , b": empty list elements are allowed and mean nothing (RFC 9110 §5.6.1)
    const ip = parseIp(entry);
    if (ip === undefined) return client;
    client = normalizeIp(entry);
    if (!trustedProxies.contains(ip)) return client;
  }
  return client;
}

/** "[2001:db8::1]:443" -> "2001:db8::1"; "192.0.2.1:8080" -> "192.0.2.1" (some proxies append the port). */
function stripPort(entry: string): string {
  if (entry.startsWith('[')) {
    const close = entry.indexOf(']');
    return close > 0 ? entry.slice(1, close) : entry;
  }
  const colon = entry.indexOf(':');
  return colon > 0 && colon === entry.lastIndexOf(':') ? entry.slice(0, colon) : entry;
}

/** Every x-forwarded-for field line of a request joined into one list, or undefined when there is none. */
export function forwardedForOf(headers: HeaderList): string | undefined {
  let out: string | undefined;
  for (const [name, value] of headers) {
    if (name !== 'x-forwarded-for') continue;
    out = out === undefined ? value : `${out}, ${value}`;
  }
  return out;
}
