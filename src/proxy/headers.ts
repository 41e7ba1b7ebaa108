// Header rewriting between client and backend. RFC 9110 §7.6.1: hop-by-hop fields, and any field the
// Connection header names, apply to one connection only and must not be forwarded.
import type { HeaderList } from './types.ts';
import type { ProxyHeaderName } from '../config/types.ts';
import { normalizeIp } from '../shared/ip.ts';
import { CONNECTION_FIELDS } from '../shared/connection-fields.ts';


/**
 * Request fields that claim to carry the client's address. Only quiclb knows it (from the socket), so
 * whatever a client sends under these names is dropped: Moodle's getremoteaddr() reads HTTP_CLIENT_IP
 * before X-Forwarded-For unless told otherwise, and other PHP code trusts X-Real-IP. quiclb sets X-Real-IP
 * itself when moodle.proxyHeaders asks for it; X-Forwarded-For is extended (below), never trusted.
 */
export const CLIENT_ADDRESS_FIELDS: ReadonlySet<string> = new Set([
  'client-ip',
  'x-client-ip',
  'x-real-ip',
  'x-cluster-client-ip',
  'true-client-ip',
  'cf-connecting-ip',
  'fastly-client-ip',
  'x-originating-ip',
  'x-remote-ip',
  'x-remote-addr',
  'forwarded-for',
  'x-forwarded',
]);

/** Field names a Connection value lists (RFC 9110 §7.6.1), added to `named`; the usual keep-alive/close add nothing. */
function addConnectionTokens(value: string, named: Set<string> | undefined): Set<string> | undefined {
  // Fast path: almost every Connection field is exactly one of these, and they name no other field.
  if (value.length <= 10) {
    const v = value.toLowerCase();
    if (v === 'keep-alive' || v === 'close' || v === 'upgrade') return named;
  }
  for (const token of value.split(',')) {
    const t = token.trim().toLowerCase();
    if (t !== '' && t !== 'keep-alive' && t !== 'close') (named ??= new Set()).add(t);
  }
  return named;
}

/** Names the Connection fields list (they are hop-by-hop too), or undefined when there are none. */
function connectionNamed(headers: HeaderList): Set<string> | undefined {
  let named: Set<string> | undefined;
  for (let i = 0; i < headers.length; i++) if (headers[i][0] === 'connection') named = addConnectionTokens(headers[i][1], named);
  return named;
}

export function stripHopByHop(headers: HeaderList): HeaderList {
  const named = connectionNamed(headers);
  return headers.filter(([name]) => !CONNECTION_FIELDS.has(name) && (named === undefined || !named.has(name)));
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
 * The backend request's header fields as a flat [name, value, name, value, ...] array (what undici's
 * dispatch takes without another copy): hop-by-hop and client-address fields removed, Expect removed
 * (quiclb answers 100-continue itself), exactly one Host (the frontends normalised it to the authority),
 * split Cookie fields joined, and the proxy headers the config asks for appended (X-Forwarded-For extends
 * an existing chain, as Moodle's getremoteaddr() and nginx's realip module expect).
 */
export function upstreamHeaders(headers: HeaderList, info: ForwardingInfo, wanted: readonly ProxyHeaderName[]): string[] {
  const out: string[] = [];
  const named = connectionNamed(headers);
  let priorXff: string | undefined;
  let priorForwarded: string | undefined;
  let hasHost = false;
  let cookies: string | undefined;
  let xff = false;
  let fwd = false;
  for (let i = 0; i < wanted.length; i++) {
    if (wanted[i] === 'x-forwarded-for') xff = true;
    else if (wanted[i] === 'forwarded') fwd = true;
  }
  for (let i = 0; i < headers.length; i++) {
    const name = headers[i][0];
    const value = headers[i][1];
    if (CONNECTION_FIELDS.has(name) || CLIENT_ADDRESS_FIELDS.has(name) || name === 'expect') continue;
    if (named !== undefined && named.has(name)) continue;
    switch (name) {
      case 'cookie':
        // RFC 9113 §8.2.3 / RFC 9114 §4.2.1: HTTP/2 and HTTP/3 clients may split Cookie into several
        // fields; an HTTP/1.1 backend must get exactly one (RFC 6265 §5.4), joined with "; ".
        cookies = cookies === undefined ? value : `${cookies}; ${value}`;
        continue;
      case 'host':
        if (hasHost) continue;
        hasHost = true;
        break;
      case 'x-forwarded-for':
        if (xff) {
          priorXff = priorXff ? `${priorXff}, ${value}` : value;
          continue;
        }
        break;
      case 'forwarded':
        if (fwd) {
          priorForwarded = priorForwarded ? `${priorForwarded}, ${value}` : value;
          continue;
        }
        break;
      case 'x-forwarded-proto':
      case 'x-forwarded-host':
      case 'x-forwarded-port':
        if (wanted.includes(name)) continue; // replaced below, never trusted from the client
        break;
    }
    out.push(name, value);
  }
  if (cookies !== undefined) out.push('cookie', cookies);
  if (!hasHost && info.host !== '') out.push('host', info.host);
  const ip = normalizeIp(info.clientIp);
  for (const name of wanted) {
    switch (name) {
      case 'x-forwarded-for':
        out.push(name, priorXff ? `${priorXff}, ${ip}` : ip);
        break;
      case 'x-forwarded-proto':
        out.push(name, info.proto);
        break;
      case 'x-forwarded-host':
        if (info.host !== '') out.push(name, info.host);
        break;
      case 'x-forwarded-port':
        out.push(name, String(info.port));
        break;
      case 'x-real-ip':
        out.push(name, ip);
        break;
      case 'forwarded': {
        const element = `for=${forwardedNode(ip)};proto=${info.proto}${info.host !== '' ? `;host=${quoteIfNeeded(info.host)}` : ''}`;
        out.push(name, priorForwarded ? `${priorForwarded}, ${element}` : element);
        break;
      }
    }
  }
  return out;
}

/**
 * undici's response header object (values are a string, or an array for a repeated field) as a list for
 * the client, hop-by-hop fields and the ones Connection names removed.
 */
export function responseHeaderList(headers: Record<string, string | string[] | undefined>): HeaderList {
  const out: HeaderList = [];
  const connection = headers.connection;
  const named = connection === undefined ? undefined : addConnectionTokens(Array.isArray(connection) ? connection.join(',') : connection, undefined);
  for (const name in headers) {
    if (CONNECTION_FIELDS.has(name) || (named !== undefined && named.has(name))) continue;
    const value = headers[name];
    if (value === undefined) continue;
    if (typeof value === 'string') out.push([name, value]);
    else for (let i = 0; i < value.length; i++) out.push([name, value[i]]);
  }
  return out;
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
