// Secondary cache keys (RFC 9111 §4.1). A stored response matches a request when, for every field its
// Vary names, the request's value equals the value of the request that produced it, after normalising
// what is semantically insignificant: field lines are combined and whitespace around commas dropped.
//
// Accept-Encoding is normalised by meaning (§4.1 allows it): a stored response with content-coding C
// serves every request that accepts C, whatever else the request lists. So the compressed variants the
// pipeline stores (one per coding) serve every client that accepts them, and a client whose Accept-Encoding
// differs only in order or in codings that were not chosen still hits. The coding check applies even
// when the response does not name Accept-Encoding in Vary: a cache never sends a coding the client did
// not accept.
import type { HeaderList } from '../shared/http-types.ts';
import { headerTokens, headerValue } from './headers.ts';

/** Lowercase field names a response's Vary lists, sorted and unique; '*' when it lists "*" (never matches). */
export function varyNames(headers: HeaderList): string[] | '*' {
  const names = headerTokens(headers, 'vary').map((n) => n.toLowerCase());
  if (names.includes('*')) return '*';
  return [...new Set(names)].sort();
}

function normalisedValue(headers: HeaderList, name: string): string | null {
  if (name === 'cookie') return cookieValue(headers);
  const v = headerValue(headers, name);
  return v === undefined ? null : v.split(',').map((s) => s.trim()).join(',');
}

// HTTP/2 and HTTP/3 may split Cookie into one field per pair (RFC 9113 §8.2.3, RFC 9114 §4.2.1), HTTP/1.1
// sends one "a=1; b=2" line: the same cookies must give the same key.
function cookieValue(headers: HeaderList): string | null {
  const pairs: string[] = [];
  for (const [k, v] of headers) if (k === 'cookie') for (const p of v.split(';')) if (p.trim() !== '') pairs.push(p.trim());
  return pairs.length === 0 ? null : pairs.join('; ');
}

/** The stored secondary key: the request's normalised value for each varying field but Accept-Encoding. */
export function varyKey(names: readonly string[], requestHeaders: HeaderList): string {
  return JSON.stringify(names.filter((n) => n !== 'accept-encoding').map((n) => [n, normalisedValue(requestHeaders, n)]));
}

export function varyMatches(storedKey: string, requestHeaders: HeaderList): boolean {
  const pairs = JSON.parse(storedKey) as Array<[string, string | null]>;
  return pairs.every(([name, value]) => normalisedValue(requestHeaders, name) === value);
}

// ---- content codings ------------------------------------------------------------------------------

/** The response's content-coding list, lowercase, comma-joined; 'identity' when it has none. */
export function contentCoding(headers: HeaderList): string {
  const codings = headerTokens(headers, 'content-encoding')
    .map(canonicalCoding)
    .filter((c) => c !== 'identity');
  return codings.length === 0 ? 'identity' : codings.join(',');
}

// RFC 9110 §8.4.1.3: x-gzip is gzip.
function canonicalCoding(c: string): string {
  const l = c.toLowerCase();
  return l === 'x-gzip' ? 'gzip' : l;
}

/** RFC 9110 §12.5.3 qvalues by coding; '*' under its own name. */
export function parseAcceptEncoding(value: string | undefined): Map<string, number> {
  const out = new Map<string, number>();
  if (value === undefined) return out;
  for (const item of value.split(',')) {
    const [rawName, ...params] = item.split(';');
    const name = canonicalCoding(rawName.trim());
    if (name === '') continue;
    let q = 1;
    for (const p of params) {
      const m = /^\s*q\s*=\s*([0-9.]+)\s*$/i.exec(p);
      if (m !== null) q = Math.min(1, Math.max(0, Number(m[1]) || 0));
    }
    out.set(name, q);
  }
  return out;
}

/**
 * How much the request wants `coding` (0 = not acceptable). Without Accept-Encoding only identity is
 * acceptable: RFC 9110 §12.5.3 would allow any coding, but clients that send none (curl, scripts)
 * cannot read compressed bodies, and no server sends them one.
 */
export function codingQuality(accept: Map<string, number> | undefined, coding: string): number {
  if (accept === undefined) return coding === 'identity' ? 1 : 0;
  let q = 1;
  for (const c of coding.split(',')) q = Math.min(q, quality(accept, c));
  return q;
}

function quality(accept: Map<string, number>, c: string): number {
  const own = accept.get(c);
  if (own !== undefined) return own;
  if (c === 'identity') {
    // Identity is acceptable unless excluded by name or by "*;q=0" (RFC 9110 §12.5.3).
    const star = accept.get('*');
    return star === 0 ? 0 : 1;
  }
  return accept.get('*') ?? 0;
}

export interface VariantCandidate {
  vary: string;
  encoding: string;
  bodySize: number;
  responseTime: number;
}

/**
 * The stored variant to serve: its Vary values match and the client accepts its coding; among those
 * the coding the client prefers, then the smaller body (compressed over identity at equal preference),
 * then the newest.
 */
export function pickVariant<T extends VariantCandidate>(candidates: readonly T[], requestHeaders: HeaderList): T | undefined {
  const ae = headerValue(requestHeaders, 'accept-encoding');
  const accept = ae === undefined ? undefined : parseAcceptEncoding(ae);
  let best: T | undefined;
  let bestQ = 0;
  for (const c of candidates) {
    const q = codingQuality(accept, c.encoding);
    if (q === 0 || !varyMatches(c.vary, requestHeaders)) continue;
    if (
      best === undefined ||
      q > bestQ ||
      (q === bestQ && (c.bodySize < best.bodySize || (c.bodySize === best.bodySize && c.responseTime > best.responseTime)))
    ) {
      best = c;
      bestQ = q;
    }
  }
  return best;
}
