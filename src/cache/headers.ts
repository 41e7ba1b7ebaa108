// Header-list helpers for the cache. Lists are lowercase-named pairs in arrival order (HeaderList).
import type { HeaderList } from '../shared/http-types.ts';
import { CONNECTION_FIELDS } from '../shared/connection-fields.ts';

/** Every line of `name` joined with ", " (RFC 9110 §5.3), or undefined when absent. */
export function headerValue(headers: HeaderList, name: string): string | undefined {
  let out: string | undefined;
  for (const [k, v] of headers) if (k === name) out = out === undefined ? v : `${out}, ${v}`;
  return out;
}

export function hasHeader(headers: HeaderList, name: string): boolean {
  for (const [k] of headers) if (k === name) return true;
  return false;
}

export function withoutHeaders(headers: HeaderList, names: ReadonlySet<string>): HeaderList {
  return headers.filter(([k]) => !names.has(k));
}

/** `name`'s comma-separated elements, trimmed, empty ones dropped (quoted commas are not split: callers use it for token lists). */
export function headerTokens(headers: HeaderList, name: string): string[] {
  const v = headerValue(headers, name);
  if (v === undefined) return [];
  return v
    .split(',')
    .map((t) => t.trim())
    .filter((t) => t !== '');
}

// RFC 9110 §7.6.1 hop-by-hop fields, and RFC 9111 §3.1: proxy authentication fields are not stored.
const NOT_STORED = new Set([
  ...CONNECTION_FIELDS,
  'proxy-authentication-info',
  // Recomputed when served: Age from the entry's own age (RFC 9111 §5.1), Content-Length from the stored body.
  'age',
  'content-length',
]);

/** The header fields a cache keeps of a response (RFC 9111 §3.1): no hop-by-hop ones, none Connection names. */
export function storedHeaders(headers: HeaderList): HeaderList {
  const named = new Set(headerTokens(headers, 'connection').map((t) => t.toLowerCase()));
  return headers.filter(([k]) => !NOT_STORED.has(k) && !named.has(k));
}

// RFC 9111 §3.2: a 304 updates the stored fields, except those the stored representation depends on.
const NOT_UPDATED = new Set([...NOT_STORED, 'content-encoding', 'content-range', 'content-type', 'vary', 'set-cookie', 'etag']);

/**
 * The stored header list updated with a 304's fields (RFC 9111 §3.2): every field the 304 carries
 * replaces all stored lines of that name, except fields describing the stored body.
 */
export function mergeNotModified(stored: HeaderList, notModified: HeaderList): HeaderList {
  const incoming = storedHeaders(notModified).filter(([k]) => !NOT_UPDATED.has(k));
  const replaced = new Set(incoming.map(([k]) => k));
  return [...stored.filter(([k]) => !replaced.has(k)), ...incoming];
}
