// Who a limit applies to: an IPv4 client by its address, an IPv6 client by its /64 prefix. One IPv6 host
// usually holds a whole /64 (RFC 4291 §2.5.1 interface identifiers, SLAAC privacy addresses rotate within
// it), so per-address limits would let one machine take 2^64 fresh buckets.
import ipaddr from 'ipaddr.js';
import { type IpAddress, parseIp } from '../shared/cidr.ts';

/** 64 bits that name a client in the shared tables; kind 0 is reserved for empty slots. */
export interface ClientKey {
  readonly kind: 4 | 6;
  readonly hi: number;
  readonly lo: number;
}

export function clientKeyOfIp(ip: IpAddress): ClientKey {
  if (ip.kind() === 'ipv4') {
    const o = (ip as ipaddr.IPv4).octets;
    return { kind: 4, hi: ((o[0] << 24) | (o[1] << 16) | (o[2] << 8) | o[3]) | 0, lo: 0 };
  }
  const p = (ip as ipaddr.IPv6).parts;
  return { kind: 6, hi: ((p[0] << 16) | p[1]) | 0, lo: ((p[2] << 16) | p[3]) | 0 };
}

/** The key of an address string (IPv4-mapped IPv6 is IPv4); undefined when it is not an IP address. */
export function clientKeyOf(address: string): ClientKey | undefined {
  const ip = parseIp(address);
  return ip === undefined ? undefined : clientKeyOfIp(ip);
}

/** For logs: "203.0.113.7" or "2001:db8:1:2::/64". */
export function formatClientKey(key: ClientKey): string {
  if (key.kind === 4) return [key.hi >>> 24, (key.hi >>> 16) & 255, (key.hi >>> 8) & 255, key.hi & 255].join('.');
  const parts = [key.hi >>> 16, key.hi & 0xffff, key.lo >>> 16, key.lo & 0xffff, 0, 0, 0, 0];
  return `${new ipaddr.IPv6(parts).toString()}/64`;
}
