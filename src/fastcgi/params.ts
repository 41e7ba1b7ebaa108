// The CGI/1.1 meta-variables (RFC 3875 §4.1) PHP and Moodle read from $_SERVER, built from a FrontRequest and the
// resolved script, with the names and values nginx's fastcgi_params gives (Moodle is tested behind nginx).

import type { FrontRequest } from '../shared/http-types.ts';
import type { ScriptTarget } from './script.ts';
import { CONNECTION_FIELDS } from '../shared/connection-fields.ts';

export interface ParamsOptions {
  /** The document root as configured (moodle.wwwRoot's directory): DOCUMENT_ROOT, PATH_TRANSLATED. */
  documentRoot: string;
  script: ScriptTarget;
  /** Bytes of request body that will be sent, null without a body (CONTENT_LENGTH). */
  contentLength: number | null;
  /** SERVER_SOFTWARE; default "quiclb". */
  serverSoftware?: string;
  /** SERVER_ADDR when known (the local address of the client's connection). */
  serverAddr?: string;
  /** Appended last (e.g. PHP_VALUE, or a BACKEND_ID for logs). */
  extra?: Iterable<readonly [string, string]>;
}

// Hop-by-hop and framing fields (RFC 9110 §7.6.1) describe the client's connection, not the request PHP sees;
// Content-Length and Content-Type are CONTENT_LENGTH/CONTENT_TYPE already (RFC 3875 §4.1.18).
const NOT_PASSED: ReadonlySet<string> = new Set([...CONNECTION_FIELDS, 'content-length', 'content-type']);

/** SERVER_PROTOCOL as nginx spells it. */
const PROTOCOL_NAME: Record<FrontRequest['protocol'], string> = { 'HTTP/1.1': 'HTTP/1.1', 'HTTP/2': 'HTTP/2.0', 'HTTP/3': 'HTTP/3.0' };

/** host and port of an authority ("[::1]:8443", "moodle.example.org"); port '' when absent. */
export function splitAuthority(authority: string): { host: string; port: string } {
  const m = /^(\[[^\]]*\]|[^:]*)(?::(\d*))?$/.exec(authority);
  if (m === null) return { host: authority, port: '' };
  return { host: m[1], port: m[2] ?? '' };
}

/**
 * Header fields as HTTP_* variables (RFC 3875 §4.1.18). Skipped: `Proxy` (httpoxy, CVE-2016-5385: PHP code
 * would read HTTP_PROXY as its outbound proxy), names with "_" (nginx's underscores_in_headers off: X_Forwarded_For
 * must not overwrite X-Forwarded-For), hop-by-hop fields. Repeated fields are joined with ", " ("; " for Cookie,
 * RFC 9113 §8.2.3).
 */
export function headerParams(headers: FrontRequest['headers']): Array<[string, string]> {
  const joined = new Map<string, string>();
  for (const [name, value] of headers) {
    if (name === 'proxy' || name.includes('_') || NOT_PASSED.has(name)) continue;
    const key = `HTTP_${name.toUpperCase().replaceAll('-', '_')}`;
    const prev = joined.get(key);
    joined.set(key, prev === undefined ? value : `${prev}${name === 'cookie' ? '; ' : ', '}${value}`);
  }
  return [...joined];
}

/** What buildParams reads of a request. */
export type ParamsRequest = Pick<FrontRequest, 'protocol' | 'method' | 'scheme' | 'authority' | 'path' | 'headers' | 'remoteAddress' | 'remotePort'>;

export function buildParams(req: ParamsRequest, opts: ParamsOptions): Array<[string, string]> {
  const { script } = opts;
  const root = opts.documentRoot.endsWith('/') ? opts.documentRoot.slice(0, -1) : opts.documentRoot;
  const q = req.path.indexOf('?');
  const { host, port } = splitAuthority(req.authority);
  const https = req.scheme === 'https';
  const contentType = req.headers.find(([n]) => n === 'content-type')?.[1] ?? '';
  const params: Array<[string, string]> = [
    ['GATEWAY_INTERFACE', 'CGI/1.1'],
    ['SERVER_SOFTWARE', opts.serverSoftware ?? 'quiclb'],
    ['SERVER_PROTOCOL', PROTOCOL_NAME[req.protocol]],
    // The name and port the client used (Moodle compares them with $CFG->wwwroot); an absent port is the
    // scheme's default, which is what the client dialled even when quiclb listens on another port behind NAT.
    ['SERVER_NAME', host.startsWith('[') ? host.slice(1, -1) : host],
    ['SERVER_PORT', port !== '' ? port : https ? '443' : '80'],
    ['REQUEST_SCHEME', req.scheme],
    ['REQUEST_METHOD', req.method],
    ['REQUEST_URI', req.path],
    ['QUERY_STRING', q < 0 ? '' : req.path.slice(q + 1)],
    ['DOCUMENT_ROOT', root],
    ['DOCUMENT_URI', script.scriptName + script.pathInfo],
    ['SCRIPT_NAME', script.scriptName],
    ['SCRIPT_FILENAME', script.scriptFilename],
    ['REMOTE_ADDR', req.remoteAddress],
    ['REMOTE_PORT', String(req.remotePort)],
    ['CONTENT_TYPE', contentType],
    // php-cgi with cgi.force_redirect checks it; nginx's fastcgi_params always sends 200.
    ['REDIRECT_STATUS', '200'],
  ];
  if (opts.serverAddr !== undefined) params.push(['SERVER_ADDR', opts.serverAddr]);
  if (opts.contentLength !== null) params.push(['CONTENT_LENGTH', String(opts.contentLength)]);
  // RFC 3875 §4.1.5-6: PATH_INFO and PATH_TRANSLATED only when there is a path after the script.
  if (script.pathInfo !== '') {
    params.push(['PATH_INFO', script.pathInfo], ['PATH_TRANSLATED', root + script.pathInfo]);
  }
  // HTTP/3 and HTTP/2 over TLS as much as HTTP/1.1 over TLS: Moodle's is_https() reads HTTPS.
  if (https) params.push(['HTTPS', 'on']);
  params.push(...headerParams(req.headers));
  if (opts.extra !== undefined) for (const [n, v] of opts.extra) params.push([n, v]);
  return params;
}
