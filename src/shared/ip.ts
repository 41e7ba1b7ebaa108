// Client addresses as every part of quiclb reports and compares them (logs, X-Forwarded-For, ip_hash, rate
// limits, admin ACL): a dual-stack socket reports an IPv4 client as ::ffff:a.b.c.d; it is the IPv4 client.

/** The address without the IPv4-mapped IPv6 prefix, lowercase. */
export function normalizeIp(ip: string): string {
  if (!ip.includes(':')) return ip;
  const lower = ip.toLowerCase();
  return lower.startsWith('::ffff:') && lower.includes('.') ? lower.slice(7) : lower;
}
