// Which sockets quiclb binds for server.bindAddress (one address or a list). The default "::" is one
// dual-stack socket per port (ipv6Only false: IPv4 clients arrive as ::ffff:a.b.c.d, which every part
// normalises with normalizeIp), so IPv6 clients are served too; on a host without IPv6 it falls back to
// 0.0.0.0. A list binds each address; "::" next to an IPv4 address is bound IPv6-only, since a dual-stack
// socket would already hold the IPv4 side of the port (EADDRINUSE on Linux).
import dgram from 'node:dgram';
import net from 'node:net';
import type { ServerConfig } from '../config/types.ts';
import type { Logger } from '../shared/logger.ts';

export interface BindSpec {
  host: string;
  /** IPv6 sockets only: refuse IPv4-mapped clients (false = dual stack). */
  ipv6Only: boolean;
  /** 6 for IPv6 literals; host names and IPv4 literals bind IPv4 as before. */
  family: 4 | 6;
}

const IPV6_ANY = new Set(['::', '::0', '0:0:0:0:0:0:0:0']);

export function isIpv6Any(host: string): boolean {
  return IPV6_ANY.has(host.toLowerCase());
}

/** server.bindAddress as a list, duplicates dropped. */
export function bindAddressList(server: Pick<ServerConfig, 'bindAddress'>): string[] {
  const list = Array.isArray(server.bindAddress) ? server.bindAddress : [server.bindAddress];
  return [...new Set(list)];
}

export function planBinds(addresses: readonly string[]): BindSpec[] {
  const hasIpv4 = addresses.some((a) => !net.isIPv6(a));
  return addresses.map((host) => {
    const family = net.isIPv6(host) ? 6 : 4;
    return { host, family, ipv6Only: family === 6 && (hasIpv4 || !isIpv6Any(host)) };
  });
}

/** Whether this host can open an IPv6 socket at all (no IPv6: EAFNOSUPPORT and friends). */
export function canBindIpv6(): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = dgram.createSocket({ type: 'udp6', ipv6Only: false });
    socket.once('error', () => {
      socket.close();
      resolve(false);
    });
    socket.bind(0, '::', () => socket.close(() => resolve(true)));
  });
}

/**
 * The sockets to bind: planBinds(), with "::" replaced by 0.0.0.0 (and a warning) when this host has no IPv6.
 * `probe` is canBindIpv6 except in tests.
 */
export async function resolveBinds(addresses: readonly string[], logger?: Logger, probe: () => Promise<boolean> = canBindIpv6): Promise<BindSpec[]> {
  const plan = planBinds(addresses);
  if (!plan.some((s) => isIpv6Any(s.host)) || (await probe())) return plan;
  const fallback = plan.filter((s) => !isIpv6Any(s.host));
  if (!fallback.some((s) => s.host === '0.0.0.0')) fallback.push({ host: '0.0.0.0', family: 4, ipv6Only: false });
  logger?.warn({ bindAddress: addresses }, 'this host has no IPv6: listening on 0.0.0.0 (IPv4 only) instead of ::');
  return fallback;
}

/** `[::]:9443` / `127.0.0.1:9443`, for logs. */
export function formatHostPort(host: string, port: number): string {
  return net.isIPv6(host) ? `[${host}]:${port}` : `${host}:${port}`;
}
