// Which content coding a response gets, from the request's Accept-Encoding (RFC 9110 §12.5.3) and the
// server's preference order (compression.encodings). Pure functions: the cache can call
// negotiateEncoding() too, to key stored variants by the coding chosen instead of by the raw header
// (browsers spell the same wish many ways: "gzip, deflate, br, zstd", "br;q=1.0, gzip;q=0.8, *;q=0.1").
import zlib from 'node:zlib';
import type { CompressionEncoding } from '../config/types.ts';
import type { HeaderList } from '../shared/http-types.ts';

/**
 * zlib has zstd streams from Node 22.15 / 23.8 on (still marked experimental in Node 24's docs, though
 * it prints no warning). Where it lacks them, zstd is never chosen, even when configured.
 */
export const HAS_ZSTD = typeof (zlib as { createZstdCompress?: unknown }).createZstdCompress === 'function';

/** The configured preference order less the codings this Node cannot produce. */
export function availableEncodings(preference: readonly CompressionEncoding[]): CompressionEncoding[] {
  return preference.filter((e) => e !== 'zstd' || HAS_ZSTD);
}

/** Every Accept-Encoding field line of a request as one list (RFC 9110 §5.3); undefined when none. */
export function acceptEncodingOf(headers: HeaderList): string | undefined {
  let value: string | undefined;
  for (const [name, v] of headers) {
    if (name === 'accept-encoding') value = value === undefined ? v : `${value}, ${v}`;
  }
  return value;
}

// RFC 9110 §5.6.2 token, and §12.4.2 qvalue: at most three decimals, never above 1.
const TOKEN_RE = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const WEIGHT_RE = /^q=(0(?:\.[0-9]{0,3})?|1(?:\.0{0,3})?)$/i;

/**
 * Accept-Encoding as coding -> weight in thousandths (0..1000; integers, so "0.001" and ties compare
 * exactly). Lowercased; "x-gzip" counts as "gzip" (RFC 9110 §8.4.1.3). An element that does not fit the
 * grammar (a bad token, a parameter other than one "q", a malformed qvalue) is ignored whole. A coding
 * listed twice keeps its lower weight: refusing is the safe reading of a contradiction.
 */
export function parseAcceptEncoding(value: string): Map<string, number> {
  const weights = new Map<string, number>();
  for (const element of value.split(',')) {
    const [rawCoding, ...params] = element.split(';').map((p) => p.trim());
    // RFC 9110 §5.6.1: empty list elements are allowed and mean nothing.
    if (rawCoding === '' && params.length === 0) continue;
    if (!TOKEN_RE.test(rawCoding) || params.length > 1) continue;
    let q = 1000;
    if (params.length === 1) {
      const m = WEIGHT_RE.exec(params[0]);
      if (m === null) continue;
      q = Math.round(Number(m[1]) * 1000);
    }
    let coding = rawCoding.toLowerCase();
    if (coding === 'x-gzip') coding = 'gzip';
    const seen = weights.get(coding);
    weights.set(coding, seen === undefined ? q : Math.min(seen, q));
  }
  return weights;
}

/**
 * The coding to apply, or undefined to send the body as it is.
 *
 * - No Accept-Encoding at all: undefined. RFC 9110 §12.5.3 lets a server pick any coding then, but the
 *   clients that send none (scripts, health checkers, curl without --compressed) expect plain bytes;
 *   nginx, Apache and Caddy do not compress for them either.
 * - A coding is acceptable when listed with q > 0, or, not listed, when "*" has q > 0. q=0 refuses.
 * - The highest weight wins; equal weights go to the earlier coding in `preference`.
 * - An explicit "identity" weighted above every acceptable coding means the client prefers no coding.
 */
export function negotiateEncoding(acceptEncoding: string | undefined, preference: readonly CompressionEncoding[]): CompressionEncoding | undefined {
  if (acceptEncoding === undefined) return undefined;
  const weights = parseAcceptEncoding(acceptEncoding);
  const star = weights.get('*') ?? 0;
  let best: CompressionEncoding | undefined;
  let bestQ = 0;
  for (const coding of availableEncodings(preference)) {
    const q = weights.get(coding) ?? star;
    if (q > bestQ) {
      best = coding;
      bestQ = q;
    }
  }
  const identity = weights.get('identity');
  if (best !== undefined && identity !== undefined && identity > bestQ) return undefined;
  return best;
}
