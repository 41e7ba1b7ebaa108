// Response fields that may appear only once. A backend can repeat one (nginx `add_header` plus the same
// header from PHP sends two ETag or X-Content-Type-Options fields); HTTP/1.1 clients cope, but node:http2
// refuses such a header block (ERR_HTTP2_HEADER_SINGLE_VALUE) and a browser may pick either value. Like
// nginx with a duplicated field, quiclb keeps the first occurrence and drops the rest, on HTTP/2 and HTTP/3.
// The list is node's (lib/internal/http2/util.js kSingleValueHeaders), response fields only.
import type { HeaderList } from './http-types.ts';

export const SINGLE_VALUE_RESPONSE_FIELDS: ReadonlySet<string> = new Set([
  'access-control-allow-credentials',
  'access-control-max-age',
  'age',
  'content-encoding',
  'content-language',
  'content-length',
  'content-location',
  'content-md5',
  'content-range',
  'content-type',
  'date',
  'etag',
  'expires',
  'last-modified',
  'location',
  'retry-after',
  'tk',
  'x-content-type-options',
]);

/** The list with every later repeat of a single-value field removed; the same array when there is none. */
export function dropRepeatedSingleValueFields(headers: HeaderList): HeaderList {
  let seen: Set<string> | undefined;
  let out: HeaderList | undefined;
  for (let i = 0; i < headers.length; i++) {
    const name = headers[i][0];
    if (SINGLE_VALUE_RESPONSE_FIELDS.has(name)) {
      seen ??= new Set();
      if (seen.has(name)) {
        out ??= headers.slice(0, i);
        continue;
      }
      seen.add(name);
    }
    out?.push(headers[i]);
  }
  return out ?? headers;
}
