// Header rewriting between client and backend. RFC 9110 §7.6.1: hop-by-hop fields, and any field the
// Connection header names, apply to one connection only and must not be forwarded.
import type { HeaderList } from './types.ts';
import type { ProxyHeaderName } from '../config/types.ts';
import { normalizeIp } from '../shared/ip.ts';

const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authenticate',
  'proxy-authorization',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'http2-settings',
]);

export function stripHopByHop(headers: HeaderList): HeaderList {
  const named = new Set<string>();
  for (const [name, value] of headers) {
    if (name === 'connection') for (const token of value.split(',')) named.add(token.trim().toLowerCase());
  }
  return headers.filter(([name]) => !HOP_BY_HOP.has(name) && !named.has(name));
}

export interface ForwardingInfo {
  clientIp: string;
  proto: 'http' | 'https';
  host: string;
  port: number;
}

/** RFC 7239 §6: IPv6 node names are bracketed and the whole value quoted. */
function forwardedNode(ip: string): string {
  return ip.includes(':') ? `"[${ip}]"` : ip;
}

function quoteIfNeeded(value: string): string {
  return /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(value) ? value : `"${value.replace(/["\\]/g, '\\$&')}"`;
}


/**
 * Builds the backend request's header list: hop-by-hop fields removed, Host kept, and the proxy headers
 * the config asks for appended (X-Forwarded-For extends an existing chain, as Moodle's getremoteaddr()
 * and nginx's realip module expect).
 */
export function backendRequestHeaders(headers: HeaderList, info: ForwardingInfo, wanted: readonly ProxyHeaderName[]): HeaderList {
  const out: HeaderList = [];
  let priorXff: string | undefined;
  let priorForwarded: string | undefined;
  let hasHost = false;
  const cookies: string[] = [];
  for (const [name, value] of stripHopByHop(headers)) {
    // RFC 9113 §8.2.3 / RFC 9114 §4.2.1: HTTP/2 and HTTP/3 clients may split Cookie into several fields;
    // an HTTP/1.1 backend must get exactly one (RFC 6265 §5.4), joined with "; ".
    if (name === 'cookie') {
      cookies.push(value);
      continue;
    }
    if (name === 'x-forwarded-for' && wanted.includes('x-forwarded-for')) {
      priorXff = priorXff ? `${priorXff}, ${value}` : value;
      continue;
    }
    if (name === 'forwarded' && wanted.includes('forwarded')) {
      priorForwarded = priorForwarded ? `${priorForwarded}, ${value}` : value;
      continue;
    }
    if (wanted.includes(name as ProxyHeaderName)) continue; // replaced below, never trusted from the client
    if (name === 'host') hasHost = true;
    out.push([name, value]);
  }
  if (cookies.length > 0) out.push(['cookie', cookies.join('; ')]);
  if (!hasHost) out.push(['host', info.host]);
  const ip = normalizeIp(info.clientIp);
  for (const name of wanted) {
    switch (name) {
      case 'x-forwarded-for':
        out.push([name, priorXff ? `${priorXff}, ${ip}` : ip]);
        break;
      case 'x-forwarded-proto':
        out.push([name, info.proto]);
        break;
      case 'x-forwarded-host':
        out.push([name, info.host]);
        break;
      case 'x-forwarded-port':
        out.push([name, String(info.port)]);
        break;
      case 'x-real-ip':
        out.push([name, ip]);
        break;
      case 'forwarded': {
        const element = `for=${forwardedNode(ip)};proto=${info.proto};host=${quoteIfNeeded(info.host)}`;
        out.push([name, priorForwarded ? `${priorForwarded}, ${element}` : element]);
        break;
      }
    }
  }
  return out;
}

/** undici's response headers (string | string[]) to a list, hop-by-hop removed. */
export function responseHeaderList(headers: Record<string, string | string[] | undefined>): HeaderList {
  const out: HeaderList = [];
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined) continue;
    if (Array.isArray(value)) for (const v of value) out.push([name, v]);
    else out.push([name, value]);
  }
  return stripHopByHop(out);
}

export function headerValues(headers: HeaderList, name: string): string[] {
  const values: string[] = [];
  for (const [n, v] of headers) if (n === name) values.push(v);
  return values;
}

export function firstHeader(headers: HeaderList, name: string): string | undefined {
  for (const [n, v] of headers) if (n === name) return v;
  return undefined;
}
