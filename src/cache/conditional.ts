// Answering a client's conditional GET/HEAD from a stored response (RFC 9111 §4.3.2, RFC 9110 §13).
import type { HeaderList } from '../shared/http-types.ts';
import { headerValue } from './headers.ts';
import { parseHttpDate } from './http-date.ts';

/** RFC 9110 §8.8.3.2 weak comparison: opaque tags equal, W/ ignored. */
function weakEqual(a: string, b: string): boolean {
  const strip = (t: string) => (t.startsWith('W/') ? t.slice(2) : t);
  return strip(a) === strip(b);
}

/** Entity tags in an If-None-Match value; ['*'] for "*". Commas inside tags are not split. */
function entityTags(value: string): string[] {
  const out: string[] = [];
  for (const m of value.matchAll(/\s*(\*|(?:W\/)?"[^"]*")\s*(?:,|$)/g)) out.push(m[1]);
  return out;
}

/**
 * True when the stored response (status 200, with its headers) satisfies the client's validators, so the
 * answer is 304. If-None-Match wins over If-Modified-Since (RFC 9110 §13.2.2); If-Modified-Since is
 * compared with Last-Modified, else Date (RFC 9111 §4.3.2).
 */
export function notModified(requestHeaders: HeaderList, status: number, headers: HeaderList): boolean {
  if (status !== 200) return false;
  const inm = headerValue(requestHeaders, 'if-none-match');
  if (inm !== undefined) {
    const etag = headerValue(headers, 'etag');
    const tags = entityTags(inm);
    if (tags.includes('*')) return true;
    return etag !== undefined && tags.some((t) => weakEqual(t, etag));
  }
  const ims = parseHttpDate(headerValue(requestHeaders, 'if-modified-since'));
  if (ims === undefined) return false;
  const modified = parseHttpDate(headerValue(headers, 'last-modified')) ?? parseHttpDate(headerValue(headers, 'date'));
  return modified !== undefined && modified <= ims;
}

// RFC 9110 §15.4.5: a 304 carries the fields a 200 would have had among these (and Age, RFC 9111 §5.1).
const NOT_MODIFIED_FIELDS = new Set(['cache-control', 'content-location', 'date', 'etag', 'expires', 'vary', 'last-modified', 'age']);

export function notModifiedHeaders(headers: HeaderList): HeaderList {
  return headers.filter(([k]) => NOT_MODIFIED_FIELDS.has(k));
}
