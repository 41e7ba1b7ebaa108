// Semantic checks every protocol shares, before a backend is chosen: a request quiclb cannot forward as
// given is answered 4xx here, so it never becomes a "backend failure" (502) nor counts against a backend's
// health. The frontends already refused what their framing forbids (HTTP/1.1's llhttp, HTTP/2's nghttp2,
// HTTP/3's message validation); what reaches here from any of them meets the rules below.
import { METHODS } from 'node:http';
import type { Config } from '../../config/types.ts';
import type { Exchange } from '../exchange.ts';
import type { Phase } from '../phase.ts';

/** RFC 9110 §5.6.2 token (methods, field names). */
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
/**
 * What may appear in a request target on the wire: visible ASCII only (RFC 9112 §3.2, RFC 3986 §2: other
 * octets are percent-encoded). llhttp refuses the rest on HTTP/1.1, and so does a backend built on it
 * (node's parser drops the connection, which would count against the backend).
 */
const BAD_TARGET = /[^\x21-\x7e]/;
/**
 * The methods quiclb forwards: llhttp's list (node:http METHODS), which the HTTP/1.1 frontend and node or
 * llhttp-based backends accept. RFC 9110 §9.1 allows any token, but a method that one frontend refuses
 * must not pass another (found by the fuzzers); an unknown one is 501 (RFC 9110 §15.6.2).
 */
const KNOWN_METHODS: ReadonlySet<string> = new Set(METHODS);
/** Field values must not carry NUL, CR or LF (RFC 9110 §5.5). */
const BAD_VALUE = /[\0\r\n]/;
const ALLOW = 'GET, HEAD, POST, PUT, DELETE, OPTIONS, PATCH';

export function validatePhase(config: Config): Phase {
  const allowTrace = config.server.allowTrace;
  return {
    name: 'validate',
    request(ex: Exchange): boolean {
      const req = ex.req;
      const method = req.method;
      if (!KNOWN_METHODS.has(method)) {
        if (!TOKEN.test(method)) return refuse(ex, 400, 'the method is not a token');
        return refuse(ex, 501, 'this method is not implemented (methods are case-sensitive)', [['allow', ALLOW]]);
      }
      if (method === 'CONNECT') return refuse(ex, 405, 'CONNECT is not supported: quiclb is not a forward proxy', [['allow', ALLOW]]);
      if (method === 'TRACE' && !allowTrace) return refuse(ex, 405, 'TRACE is disabled (server.allowTrace)', [['allow', ALLOW]]);
      const path = req.path;
      if (path === '*') {
        if (method !== 'OPTIONS') return refuse(ex, 400, 'the asterisk-form target is only for OPTIONS');
        // OPTIONS * asks about the server in general (RFC 9110 §9.3.7); for the clients of a gateway quiclb is
        // that server, and undici cannot send an asterisk-form target. Answered here, as Caddy/Go's net/http do.
        ex.req.body?.resume();
        ex.respond(200, [['allow', ALLOW], ['content-length', '0']]).end();
        ex.answeredBy = 'validate';
        return true;
      }
      if (path.charCodeAt(0) !== 47 /* '/' */ || BAD_TARGET.test(path)) return refuse(ex, 400, 'invalid request target');
      if (req.protocol !== 'HTTP/1.1') {
        // llhttp checked these on HTTP/1.1; HPACK/QPACK can carry any bytes.
        let hosts = 0;
        for (const [name, value] of req.headers) {
          if (!TOKEN.test(name)) return refuse(ex, 400, 'invalid field name');
          if (BAD_VALUE.test(value)) return refuse(ex, 400, `invalid value in field ${name}`);
          if (name === 'host' && ++hosts > 1) return refuse(ex, 400, 'more than one Host field');
          if (name === 'expect' && value.toLowerCase() !== '100-continue') return refuse(ex, 417, 'the only expectation quiclb meets is 100-continue');
        }
      }
      return false;
    },
  };
}

function refuse(ex: Exchange, status: number, why: string, extra?: Array<[string, string]>): true {
  ex.req.body?.resume();
  ex.answer(status, `${status} ${why}\n`, extra, 'validate');
  return true;
}
