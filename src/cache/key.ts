// Which requests the cache handles, and their primary cache key (RFC 9111 §2: the target URI; the method
// is not part of it because only GET responses are stored and HEAD is answered from them, §4).
import type { FrontRequest } from '../shared/http-types.ts';
import { hasHeader } from './headers.ts';

export type BypassReason = 'method' | 'range' | 'body' | 'no-authority';

/** Why the cache stays out of `req`, or undefined when it handles it. */
export function bypassReason(req: FrontRequest): BypassReason | undefined {
  if (req.method !== 'GET' && req.method !== 'HEAD') return 'method';
  // Range requests go to the backend: 206 responses are not stored, and answering a range from a stored
  // 200 is left to the backend (RFC 9111 §3.4 lets a cache skip it).
  if (hasHeader(req.headers, 'range')) return 'range';
  if (req.body !== null) return 'body';
  if (req.authority === '' || !req.path.startsWith('/')) return 'no-authority';
  return undefined;
}

/** scheme://host[:port]/path?query, host lowercase and the scheme's default port dropped. */
export function primaryKey(req: FrontRequest): string {
  let authority = req.authority.toLowerCase();
  const defaultPort = req.scheme === 'https' ? ':443' : ':80';
  if (authority.endsWith(defaultPort)) authority = authority.slice(0, -defaultPort.length);
  return `${req.scheme}://${authority}${req.path}`;
}

/** The path part of a primary key (what purge('/prefix') matches). */
export function keyPath(key: string): string {
  const slash = key.indexOf('/', key.indexOf('://') + 3);
  return slash === -1 ? '/' : key.slice(slash);
}
