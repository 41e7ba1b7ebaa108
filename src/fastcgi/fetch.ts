// One whole GET through a FastCgiPool with a body-size cap, for callers that want an answer rather than a
// stream: active health checks of FastCGI backends (GET healthCheck.path, as HTTP backends get). The path is
// resolved and the parameters built exactly as for a client request.

import type { FrontRequest, HeaderList } from '../shared/http-types.ts';
import { FastCgiError } from './errors.ts';
import { buildParams } from './params.ts';
import type { FastCgiPool } from './pool.ts';
import { resolveScript } from './script.ts';

export interface FastCgiFetchOptions {
  /** moodle.wwwRoot's directory, and its realpath. */
  documentRoot: string;
  realRoot: string;
  /** Origin-form target, e.g. "/admin/cli/healthcheck.php". */
  path: string;
  /** Host the request is for (HTTP_HOST, SERVER_NAME); default "localhost". */
  authority?: string;
  scheme?: 'http' | 'https';
  /** One deadline for the whole exchange. */
  timeoutMs: number;
  /** Body bytes kept; the rest is read and dropped (truncated = true). */
  maxBodyBytes: number;
  /** Extra request headers (lowercase names), e.g. user-agent. */
  headers?: HeaderList;
}

export interface FastCgiFetchResult {
  status: number;
  headers: HeaderList;
  body: Buffer;
  truncated: boolean;
}

/** Rejects with a FastCgiError (QUICLB_FCGI_NO_SCRIPT when the path runs no script, else the pool's codes). */
export async function fastCgiFetch(pool: FastCgiPool, opts: FastCgiFetchOptions): Promise<FastCgiFetchResult> {
  const script = await resolveScript(opts.documentRoot, opts.realRoot, opts.path, { deniedPaths: [] });
  if (script.kind !== 'script') throw new FastCgiError('QUICLB_FCGI_NO_SCRIPT', `${opts.path} runs no PHP script under ${opts.documentRoot} (${script.kind})`);
  const authority = opts.authority ?? 'localhost';
  const req: FrontRequest = {
    protocol: 'HTTP/1.1',
    method: 'GET',
    scheme: opts.scheme ?? 'http',
    authority,
    path: opts.path,
    headers: [['host', authority], ...(opts.headers ?? [])],
    body: null,
    remoteAddress: '127.0.0.1',
    remotePort: 0,
    localPort: 0,
    connectionKey: 'quiclb-fetch',
    shard: -1,
  };
  const params = buildParams(req, { documentRoot: opts.documentRoot, script, contentLength: null });
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let kept = 0;
    let truncated = false;
    let status = 0;
    let headers: HeaderList = [];
    const signal = AbortSignal.timeout(opts.timeoutMs);
    pool.dispatch(
      { params, body: null, contentLength: 0, signal },
      {
        onResponseStart(controller, statusCode) {
          status = statusCode;
          const raw = (controller.rawHeaders ?? []) as string[];
          headers = [];
          for (let i = 0; i + 1 < raw.length; i += 2) headers.push([raw[i], raw[i + 1]]);
        },
        onResponseData(_controller, chunk) {
          const room = opts.maxBodyBytes - kept;
          if (chunk.length > room) truncated = true;
          if (room > 0) {
            const part = chunk.length > room ? chunk.subarray(0, room) : chunk;
            chunks.push(Buffer.from(part));
            kept += part.length;
          }
        },
        onResponseEnd() {
          resolve({ status, headers, body: Buffer.concat(chunks), truncated });
        },
        onResponseError(_controller, err) {
          if (err.name === 'TimeoutError') reject(new FastCgiError('ETIMEDOUT', `${opts.path} did not answer within ${opts.timeoutMs} ms`, { cause: err }));
          else reject(err);
        },
      },
    );
  });
}
