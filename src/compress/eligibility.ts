// Whether a response is compressed, and the response headers that go with the decision. Built once
// from config.compression (compressionPolicy), asked once per response, after the upstream response
// filters: plan() looks only at the request method and headers and the response status and headers, so
// it runs before a single body byte is read.
import type { CompressionConfig, CompressionEncoding } from '../config/types.ts';
import type { HeaderList } from '../shared/http-types.ts';
import { acceptEncodingOf, availableEncodings, negotiateEncoding } from './negotiate.ts';

/** Why a body goes out as it came: for logs, counters and tests. */
export type SkipReason =
  | 'disabled' // compression.enabled is false
  | 'no-body' // 1xx, 204, 304: no content to compress
  | 'range' // 206 or a Content-Range: byte ranges of the uncompressed representation
  | 'encoded' // the backend already set a Content-Encoding
  | 'no-transform' // Cache-Control: no-transform on the response or the request
  | 'type' // Content-Type absent or not in compression.types
  | 'small' // Content-Length below compression.minSize
  | 'head' // HEAD: no body is sent
  | 'not-accepted'; // the client's Accept-Encoding allows none of compression.encodings

export type CompressionPlan =
  | {
      encoding: CompressionEncoding;
      /** zlib level for `encoding` (compression.level). */
      level: number;
      /** The backend's Content-Length, when it sent one: Brotli's size hint. */
      sizeHint: number | undefined;
      /** Headers to send: Content-Encoding set, Vary merged, Content-Length and the like removed, ETag weak. */
      headers: HeaderList;
    }
  | {
      encoding: undefined;
      reason: SkipReason;
      /** Headers to send: the backend's, with Vary: Accept-Encoding merged when the response varies by it. */
      headers: HeaderList;
    };

/** The request facts plan() reads (a FrontRequest is one). */
export interface RequestFacts {
  method: string;
  headers: HeaderList;
}

export interface CompressionPolicy {
  readonly enabled: boolean;
  /** compression.encodings less the codings this Node lacks (zstd before Node 22.15). */
  readonly encodings: readonly CompressionEncoding[];
  plan(req: RequestFacts, status: number, headers: HeaderList): CompressionPlan;
}

function first(headers: HeaderList, name: string): string | undefined {
  for (const [k, v] of headers) if (k === name) return v;
  return undefined;
}

function has(headers: HeaderList, name: string): boolean {
  return first(headers, name) !== undefined;
}

/** RFC 9111 §5.2: Cache-Control directives are case-insensitive tokens, each may carry "=value". */
function hasNoTransform(headers: HeaderList): boolean {
  for (const [k, v] of headers) {
    if (k !== 'cache-control') continue;
    for (const directive of v.split(',')) {
      if (directive.split('=')[0].trim().toLowerCase() === 'no-transform') return true;
    }
  }
  return false;
}

/** "text/html; charset=utf-8" -> "text/html". */
export function mediaTypeOf(contentType: string): string {
  const semi = contentType.indexOf(';');
  return (semi === -1 ? contentType : contentType.slice(0, semi)).trim().toLowerCase();
}

/** A matcher for compression.types: exact "type/subtype" entries and "type/*" wildcards. */
export function typeMatcher(types: readonly string[]): (mediaType: string) => boolean {
  const exact = new Set<string>();
  const wildcard = new Set<string>();
  for (const t of types) {
    if (t.endsWith('/*')) wildcard.add(t.slice(0, -1));
    else exact.add(t);
  }
  return (mediaType) => exact.has(mediaType) || (wildcard.size > 0 && wildcard.has(mediaType.slice(0, mediaType.indexOf('/') + 1)));
}

function contentLength(headers: HeaderList): number | undefined {
  const v = first(headers, 'content-length');
  return v !== undefined && /^[0-9]{1,15}$/.test(v.trim()) ? Number(v.trim()) : undefined;
}

/**
 * Adds Accept-Encoding to Vary (RFC 9110 §12.5.5): into the first Vary field when there is one (the
 * others are folded into it), unless it is listed already or Vary is "*", which already says the
 * response varies by everything. The same array when nothing changes.
 */
export function mergeVary(headers: HeaderList): HeaderList {
  const members: string[] = [];
  let at = -1;
  for (let i = 0; i < headers.length; i++) {
    const [k, v] = headers[i];
    if (k !== 'vary') continue;
    if (at === -1) at = i;
    for (const m of v.split(',')) {
      const name = m.trim();
      if (name === '') continue;
      const lower = name.toLowerCase();
      if (lower === '*' || lower === 'accept-encoding') return headers;
      members.push(name);
    }
  }
  if (at === -1) return [...headers, ['vary', 'Accept-Encoding']];
  members.push('Accept-Encoding');
  const out: HeaderList = [];
  for (let i = 0; i < headers.length; i++) {
    if (i === at) out.push(['vary', members.join(', ')]);
    else if (headers[i][0] !== 'vary') out.push(headers[i]);
  }
  return out;
}

/**
 * RFC 9110 §8.8.3: a strong validator promises byte-identical content, which compressed bytes are not
 * (nor the same from one zlib version to the next), so a strong ETag becomes weak: `"x"` -> `W/"x"`,
 * as nginx's gzip filter does. A weak one stays; a malformed one (no quotes) is dropped, as nginx drops it.
 */
export function weakenEtag(etag: string): string | undefined {
  const v = etag.trim();
  if (v.startsWith('W/"')) return v;
  if (v.startsWith('"') && v.endsWith('"') && v.length >= 2) return `W/${v}`;
  return undefined;
}

/**
 * Fields that describe the uncompressed bytes and would lie about the compressed ones: the length, byte
 * ranges (Accept-Ranges: a range of the compressed stream cannot be served), and digests of the content
 * (RFC 9530 Content-Digest and Repr-Digest, both over the coded bytes; Content-MD5, RFC 1864).
 */
const DROPPED_WHEN_COMPRESSED = new Set(['content-length', 'accept-ranges', 'content-digest', 'repr-digest', 'content-md5']);

function compressedHeaders(headers: HeaderList, encoding: CompressionEncoding): HeaderList {
  const out: HeaderList = [];
  for (const [k, v] of headers) {
    if (DROPPED_WHEN_COMPRESSED.has(k)) continue;
    if (k === 'etag') {
      const weak = weakenEtag(v);
      if (weak !== undefined) out.push([k, weak]);
      continue;
    }
    out.push([k, v]);
  }
  out.push(['content-encoding', encoding]);
  return mergeVary(out);
}

export function compressionPolicy(config: CompressionConfig): CompressionPolicy {
  const encodings = availableEncodings(config.encodings);
  const enabled = config.enabled && encodings.length > 0;
  const isCompressible = typeMatcher(config.types);
  const skip = (reason: SkipReason, headers: HeaderList): CompressionPlan => ({ encoding: undefined, reason, headers });

  const plan = (req: RequestFacts, status: number, headers: HeaderList): CompressionPlan => {
    if (!enabled) return skip('disabled', headers);
    // RFC 9110 §15.3.5, §15.4.5: 204 and 304 have no content; 1xx are interim. (A 304's headers stay
    // as the backend sent them: its Content-Type, if any, cannot say what the 200 would have been.)
    if (status < 200 || status === 204 || status === 304) return skip('no-body', headers);
    // RFC 9110 §14.4: Content-Range offsets count bytes of the representation as the backend coded it.
    if (status === 206 || has(headers, 'content-range')) return skip('range', headers);
    // The backend negotiated its own coding (its Vary is its business); never code twice.
    if (has(headers, 'content-encoding')) return skip('encoded', headers);
    // RFC 9110 §7.7: a proxy MUST NOT transform content marked no-transform.
    if (hasNoTransform(headers)) return skip('no-transform', headers);
    const type = first(headers, 'content-type');
    if (type === undefined || !isCompressible(mediaTypeOf(type))) return skip('type', headers);
    const length = contentLength(headers);
    if (length !== undefined && length < config.minSize) return skip('small', headers);

    // From here the bytes sent depend on Accept-Encoding, so every answer says so (RFC 9110 §12.5.5),
    // also the uncompressed ones: a shared cache must not give a stored identity answer to a client
    // that asked for br, nor a stored br answer to one that cannot decode it.
    const varied = mergeVary(headers);
    // RFC 9110 §9.3.2: HEAD sends no content; its headers stay the backend's (nginx does not code HEAD).
    if (req.method === 'HEAD') return skip('head', varied);
    // RFC 9111 §5.2.1.6: the client asked intermediaries not to transform the content.
    if (hasNoTransform(req.headers)) return skip('no-transform', varied);
    const encoding = negotiateEncoding(acceptEncodingOf(req.headers), encodings);
    if (encoding === undefined) return skip('not-accepted', varied);
    return { encoding, level: config.level[encoding], sizeHint: length, headers: compressedHeaders(headers, encoding) };
  };

  return { enabled, encodings, plan };
}
