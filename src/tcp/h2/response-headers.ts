// A response header list to the object node:http2 sends. node refuses (throws on) a block that repeats a
// single-value field (ERR_HTTP2_HEADER_SINGLE_VALUE) or holds a connection-specific field
// (ERR_HTTP2_INVALID_CONNECTION_HEADERS); a backend can send either, so both are dropped here rather than
// turning a usable response into an error.
import type { OutgoingHttpHeaders } from 'node:http2';
import type { HeaderList } from '../../shared/http-types.ts';
import { dropRepeatedSingleValueFields } from '../../shared/single-value-fields.ts';
import { CONNECTION_FIELDS } from '../../shared/connection-fields.ts';


export function toNodeHeaders(status: number, headers: HeaderList): OutgoingHttpHeaders {
  // No prototype: a field named __proto__ is a field like any other.
  const out: OutgoingHttpHeaders = Object.create(null);
  out[':status'] = status;
  const list = dropRepeatedSingleValueFields(headers);
  for (let i = 0; i < list.length; i++) {
    const name = list[i][0];
    if (CONNECTION_FIELDS.has(name)) continue; // RFC 9113 §8.2.2: an intermediary removes them
    const value = list[i][1];
    const prev = out[name];
    if (prev === undefined) out[name] = value;
    else if (Array.isArray(prev)) prev.push(value);
    else out[name] = [prev as string, value];
  }
  return out;
}
