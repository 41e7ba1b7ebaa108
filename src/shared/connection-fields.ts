// The connection-specific (hop-by-hop) header fields, the one list quiclb uses. RFC 9110 §7.6.1: they apply to
// one connection only and are never forwarded; RFC 9113 §8.2.2 and RFC 9114 §4.2: they do not exist in HTTP/2
// and HTTP/3 (a request carrying one is malformed; `te: trailers` is the one exception, in requests).
export const CONNECTION_FIELDS: ReadonlySet<string> = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authenticate',
  'proxy-authorization',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'http2-settings',
]);
