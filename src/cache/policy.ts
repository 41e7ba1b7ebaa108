// What a shared cache may store and for how long (RFC 9111 §3, §4.2). Pure functions of a request, a
// response and times in ms; the store and the pipeline only act on their answers.
//
// Decisions beyond the RFC's musts (src/cache/README.md says why):
//   - No heuristic freshness (§4.2.2 allows, never requires it): a response without explicit freshness
//     (s-maxage, max-age, Expires, or no-cache meaning "revalidate every time") is not stored.
//   - Never stored: responses with Set-Cookie (they belong to one client), and responses to requests with
//     Authorization unless marked public or s-maxage. §3.5 also lets must-revalidate share them; quiclb
//     does not, because origins add must-revalidate to personal responses without meaning "share this".
//   - Requests' own Cache-Control and Pragma are ignored (src/cache/README.md: one client must not force
//     misses for everyone).
import type { HeaderList } from '../shared/http-types.ts';
import { parseCacheControl } from './cache-control.ts';
import { hasHeader, headerValue } from './headers.ts';
import { parseHttpDate } from './http-date.ts';
import { varyNames } from './vary.ts';

/**
 * Final statuses whose meaning the cache understands and may reuse (RFC 9111 §3, RFC 9110 §15.1 lists the
 * heuristically cacheable ones). 206 is left out (no range support), 304 is a revalidation answer.
 */
export const CACHEABLE_STATUSES: ReadonlySet<number> = new Set([200, 203, 204, 300, 301, 302, 307, 308, 404, 405, 410, 414, 501]);

export type NotStoredReason =
  | 'method' // only GET responses are stored (HEAD is answered from them)
  | 'status'
  | 'no-store'
  | 'private'
  | 'set-cookie'
  | 'authorization'
  | 'vary-star'
  | 'no-explicit-freshness' // heuristics declined
  | 'no-use' // stale on arrival with no validator and no stale-* allowance: could never be served
  | 'too-large';

export interface StoragePolicy {
  /** Freshness lifetime (§4.2.1), 0 for no-cache. */
  lifetimeMs: number;
  staleWhileRevalidateMs: number;
  staleIfErrorMs: number;
  /** must-revalidate, proxy-revalidate, s-maxage or no-cache: never served stale (§4.2.4). */
  mustRevalidate: boolean;
  etag?: string;
  lastModified?: string;
  varyNames: string[];
}

export type StorageDecision = { store: true; policy: StoragePolicy } | { store: false; reason: NotStoredReason };

export function storageDecision(method: string, requestHeaders: HeaderList, status: number, headers: HeaderList, responseTime: number): StorageDecision {
  if (method !== 'GET') return { store: false, reason: 'method' };
  if (!CACHEABLE_STATUSES.has(status)) return { store: false, reason: 'status' };
  const cc = parseCacheControl(headerValue(headers, 'cache-control'));
  if (cc.noStore) return { store: false, reason: 'no-store' };
  // §3: a shared cache must not store private responses; private="field" is treated as private.
  if (cc.private) return { store: false, reason: 'private' };
  if (hasHeader(headers, 'set-cookie')) return { store: false, reason: 'set-cookie' };
  // §3.5 (stricter, see above).
  if (hasHeader(requestHeaders, 'authorization') && !cc.public && cc.sMaxage === undefined) return { store: false, reason: 'authorization' };
  const names = varyNames(headers);
  // §4.1: "Vary: *" always fails to match, so storing it would only take space.
  if (names === '*') return { store: false, reason: 'vary-star' };
  const hasExpires = hasHeader(headers, 'expires');
  if (cc.sMaxage === undefined && cc.maxAge === undefined && !hasExpires && !cc.noCache) return { store: false, reason: 'no-explicit-freshness' };

  const policy: StoragePolicy = {
    lifetimeMs: cc.noCache ? 0 : freshnessLifetimeMs(cc.sMaxage, cc.maxAge, headers, responseTime),
    staleWhileRevalidateMs: (cc.staleWhileRevalidate ?? 0) * 1000,
    staleIfErrorMs: (cc.staleIfError ?? 0) * 1000,
    // §5.2.2.10: s-maxage implies proxy-revalidate for a shared cache; §5.2.2.4: no-cache forbids unvalidated reuse.
    mustRevalidate: cc.mustRevalidate || cc.proxyRevalidate || cc.sMaxage !== undefined || cc.noCache,
    etag: headerValue(headers, 'etag'),
    lastModified: headerValue(headers, 'last-modified'),
    varyNames: names,
  };
  const validator = policy.etag !== undefined || policy.lastModified !== undefined;
  const staleUse = !policy.mustRevalidate && (policy.staleWhileRevalidateMs > 0 || policy.staleIfErrorMs > 0);
  if (policy.lifetimeMs === 0 && !validator && !staleUse) return { store: false, reason: 'no-use' };
  return { store: true, policy };
}

/** §4.2.1 for a shared cache: s-maxage, else max-age, else Expires minus Date. */
function freshnessLifetimeMs(sMaxage: number | undefined, maxAge: number | undefined, headers: HeaderList, responseTime: number): number {
  if (sMaxage !== undefined) return sMaxage * 1000;
  if (maxAge !== undefined) return maxAge * 1000;
  // §5.3: an invalid Expires (such as "0") is in the past.
  const expires = parseHttpDate(headerValue(headers, 'expires'));
  if (expires === undefined) return 0;
  const date = parseHttpDate(headerValue(headers, 'date')) ?? responseTime;
  return Math.max(0, expires - date);
}

/**
 * corrected_initial_age of §4.2.3 in ms: how old the response already was when it arrived, from its Date
 * and Age fields and the time the request took. `requestTime` is when the request went to the backend,
 * `responseTime` when the response headers came back.
 */
export function initialAgeMs(headers: HeaderList, requestTime: number, responseTime: number): number {
  const date = parseHttpDate(headerValue(headers, 'date'));
  const apparentAge = date === undefined ? 0 : Math.max(0, responseTime - date);
  const age = headerValue(headers, 'age');
  const ageValue = age !== undefined && /^\s*\d+\s*$/.test(age) ? Number(age) * 1000 : 0;
  const correctedAgeValue = ageValue + Math.max(0, responseTime - requestTime);
  return Math.max(apparentAge, correctedAgeValue);
}

/** current_age of §4.2.3: the initial age plus the time the entry has been stored. */
export function currentAgeMs(initialAge: number, responseTime: number, now: number): number {
  return initialAge + Math.max(0, now - responseTime);
}

/** The Age field value (§5.1): whole seconds. */
export function ageSeconds(currentAge: number): number {
  return Math.floor(currentAge / 1000);
}

export interface FreshnessInput {
  lifetimeMs: number;
  staleWhileRevalidateMs: number;
  staleIfErrorMs: number;
  mustRevalidate: boolean;
}

/**
 * 'fresh': serve. 'stale-while-revalidate': serve and revalidate in the background (RFC 5861 §3).
 * 'stale': revalidate (or refetch) before serving.
 */
export function freshness(p: FreshnessInput, currentAge: number): 'fresh' | 'stale-while-revalidate' | 'stale' {
  if (currentAge < p.lifetimeMs) return 'fresh';
  if (!p.mustRevalidate && currentAge < p.lifetimeMs + p.staleWhileRevalidateMs) return 'stale-while-revalidate';
  return 'stale';
}

/** RFC 5861 §4: a stale entry may answer when the backend fails, within stale-if-error. */
export function usableOnError(p: FreshnessInput, currentAge: number): boolean {
  return !p.mustRevalidate && currentAge < p.lifetimeMs + p.staleIfErrorMs;
}
