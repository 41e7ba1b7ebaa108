// Validators and conditional requests for files (RFC 9110 §8.8, §13): a strong ETag from size and mtime (as
// nginx builds it), Last-Modified, and the evaluation order of RFC 9110 §13.2.2.

import type { HeaderList } from '../shared/http-types.ts';

export interface Validators {
  /** Strong entity tag, quoted. */
  etag: string;
  /** IMF-fixdate (RFC 9110 §5.6.7). */
  lastModified: string;
  /** mtime in whole seconds (HTTP dates have no finer resolution). */
  mtimeSec: number;
}

export function validatorsFor(stats: { size: number; mtimeMs: number }): Validators {
  const mtimeSec = Math.floor(stats.mtimeMs / 1000);
  return {
    etag: `"${Math.floor(stats.mtimeMs).toString(16)}-${stats.size.toString(16)}"`,
    lastModified: new Date(mtimeSec * 1000).toUTCString(),
    mtimeSec,
  };
}

function header(headers: HeaderList, name: string): string | undefined {
  const values = headers.filter(([n]) => n === name).map(([, v]) => v);
  return values.length === 0 ? undefined : values.join(', ');
}

/** Entity tags of a list header (If-Match, If-None-Match); '*' stays '*'. */
function tags(value: string): string[] {
  return value.split(',').map((t) => t.trim()).filter((t) => t !== '');
}

const opaque = (tag: string): string => (tag.startsWith('W/') ? tag.slice(2) : tag);

/** RFC 9110 §8.8.3.2: weak comparison matches opaque tags whatever their W/ prefix. */
function weakMatch(list: string, etag: string): boolean {
  return tags(list).some((t) => t === '*' || opaque(t) === opaque(etag));
}

/** Strong comparison: both strong and equal. */
function strongMatch(list: string, etag: string): boolean {
  return tags(list).some((t) => t === '*' || (!t.startsWith('W/') && t === etag));
}

function httpDateSec(value: string): number | undefined {
  const ms = Date.parse(value);
  return Number.isNaN(ms) ? undefined : Math.floor(ms / 1000);
}

export type ConditionalOutcome = 'proceed' | 'not-modified' | 'precondition-failed';

/** RFC 9110 §13.2.2 steps 1-4 (If-Range is ifRangeAllows's, step 5). */
export function evaluateConditionals(method: string, headers: HeaderList, v: Validators): ConditionalOutcome {
  const getOrHead = method === 'GET' || method === 'HEAD';
  const ifMatch = header(headers, 'if-match');
  if (ifMatch !== undefined) {
    if (!strongMatch(ifMatch, v.etag)) return 'precondition-failed';
  } else {
    const ius = header(headers, 'if-unmodified-since');
    const since = ius === undefined ? undefined : httpDateSec(ius);
    if (since !== undefined && v.mtimeSec > since) return 'precondition-failed';
  }
  const inm = header(headers, 'if-none-match');
  if (inm !== undefined) {
    if (weakMatch(inm, v.etag)) return getOrHead ? 'not-modified' : 'precondition-failed';
  } else if (getOrHead) {
    const ims = header(headers, 'if-modified-since');
    const since = ims === undefined ? undefined : httpDateSec(ims);
    if (since !== undefined && v.mtimeSec <= since) return 'not-modified';
  }
  return 'proceed';
}

/**
 * RFC 9110 §13.1.5: a Range applies only if If-Range (when present) still matches: an entity tag by strong
 * comparison, or a date equal to Last-Modified.
 */
export function ifRangeAllows(headers: HeaderList, v: Validators): boolean {
  const value = header(headers, 'if-range');
  if (value === undefined) return true;
  const t = value.trim();
  if (t.startsWith('"') || t.startsWith('W/')) return !t.startsWith('W/') && t === v.etag;
  return httpDateSec(t) === v.mtimeSec;
}
