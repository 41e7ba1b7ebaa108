// From a validated HTTP/3 request header section (src/http3/message-validation.ts) to the parts of a
// FrontRequest: pseudo-headers out, and the target normalised as every frontend does (src/shared/http-types.ts):
// `authority` is :authority, else Host, and the headers carry exactly one `host` field equal to it
// (RFC 9114 §4.3.1 already made both equal when both were sent).
import type { HeaderList } from '../shared/http-types.ts';

export interface RequestHead {
  method: string;
  authority: string;
  path: string;
  headers: HeaderList;
  /** :protocol of an extended CONNECT (RFC 9220), else ''. */
  protocol: string;
}

export function requestHead(fields: ReadonlyArray<[string, string]>): RequestHead {
  let method = '';
  let path = '';
  let authority = '';
  let protocol = '';
  let hasHost = false;
  const headers: HeaderList = [];
  for (let i = 0; i < fields.length; i++) {
    const f = fields[i];
    const name = f[0];
    if (name.charCodeAt(0) === 0x3a /* ':' */) {
      if (name === ':method') method = f[1];
      else if (name === ':path') path = f[1];
      else if (name === ':authority') authority = f[1];
      else if (name === ':protocol') protocol = f[1];
      continue;
    }
    if (name === 'host') {
      hasHost = true;
      if (authority === '') authority = f[1];
    }
    headers.push(f);
  }
  // The common case: the client sent :authority only.
  if (!hasHost && authority !== '') headers.unshift(['host', authority]);
  return { method, authority, path, headers, protocol };
}
