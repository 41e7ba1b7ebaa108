// Who may use the admin endpoints: the client address must fall in admin.allowFrom (CIDR list), and
// when admin.token is set the request must carry `Authorization: Bearer <token>` (RFC 6750 §2.1).
import { createHash, timingSafeEqual } from 'node:crypto';
import ipaddr from 'ipaddr.js';
import type { AdminConfig } from '../config/types.ts';

export type AccessDecision = { ok: true } | { ok: false; status: 403 | 401; reason: string };

type Range = [ipaddr.IPv4 | ipaddr.IPv6, number];

/** Parsed allowFrom per config object: parsing once keeps the check to a few comparisons. */
const parsedRanges = new WeakMap<string[], Range[]>();

function parseRange(entry: string): Range | undefined {
  try {
    if (entry.includes('/')) return ipaddr.parseCIDR(entry);
    const addr = ipaddr.parse(entry);
    return [addr, addr.kind() === 'ipv4' ? 32 : 128];
  } catch {
    // The config schema validates allowFrom; an entry that still fails to parse matches nothing.
    return undefined;
  }
}

function rangesFor(allowFrom: string[]): Range[] {
  let ranges = parsedRanges.get(allowFrom);
  if (!ranges) {
    ranges = allowFrom.map(parseRange).filter((r): r is Range => r !== undefined);
    parsedRanges.set(allowFrom, ranges);
  }
  return ranges;
}

export function isAddressAllowed(remoteAddress: string, allowFrom: string[]): boolean {
  let addr: ipaddr.IPv4 | ipaddr.IPv6;
  try {
    // process() turns an IPv4-mapped IPv6 address (::ffff:127.0.0.1, what a dual-stack socket
    // reports for IPv4 clients) into plain IPv4, so "127.0.0.0/8" matches it.
    addr = ipaddr.process(remoteAddress.replace(/^\[|\]$/g, '').replace(/%.*$/, ''));
  } catch {
    return false;
  }
  for (const [net, bits] of rangesFor(allowFrom)) {
    if (addr.kind() === 'ipv4' && net.kind() === 'ipv4') {
      if ((addr as ipaddr.IPv4).match(net as ipaddr.IPv4, bits)) return true;
    } else if (addr.kind() === 'ipv6' && net.kind() === 'ipv6') {
      if ((addr as ipaddr.IPv6).match(net as ipaddr.IPv6, bits)) return true;
    } else if (addr.kind() === 'ipv4' && net.kind() === 'ipv6') {
      // An IPv6 range written for mapped addresses (::ffff:0:0/96) still covers IPv4 clients.
      if ((addr as ipaddr.IPv4).toIPv4MappedAddress().match(net as ipaddr.IPv6, bits)) return true;
    }
  }
  return false;
}

function digest(s: string): Buffer {
  return createHash('sha256').update(s).digest();
}

/** Constant time regardless of where the strings differ or how long they are (both hashed first). */
export function tokensEqual(given: string, expected: string): boolean {
  return timingSafeEqual(digest(given), digest(expected));
}

export function isAdminAllowed(remoteAddress: string, authorizationHeader: string | undefined, admin: AdminConfig): AccessDecision {
  if (!isAddressAllowed(remoteAddress, admin.allowFrom)) {
    return { ok: false, status: 403, reason: `client address ${remoteAddress} is not in admin.allowFrom` };
  }
  if (admin.token === undefined || admin.token === '') return { ok: true };
  const m = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(authorizationHeader ?? '');
  if (!m) return { ok: false, status: 401, reason: 'admin.token is set: send "Authorization: Bearer <token>"' };
  if (!tokensEqual(m[1], admin.token)) return { ok: false, status: 401, reason: 'the bearer token does not match admin.token' };
  return { ok: true };
}
