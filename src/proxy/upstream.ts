// Where one attempt goes: undici's Pool for an HTTP backend, a FastCgiPool (src/fastcgi) for php-fpm. Both take
// undici's DispatchHandler, so forward.ts drives either with the same Attempt; only the request differs (an
// HTTP/1.1 request head, or CGI parameters with the script the static phase resolved under moodle.wwwRoot).
import { Pool } from 'undici';
import type { Dispatcher } from 'undici';
import type { Readable } from 'node:stream';
import type { BackendConfig, Config } from '../config/types.ts';
import { wwwRootDirectory } from '../config/www-root.ts';
import type { Logger } from '../shared/logger.ts';
import type { FrontRequest, HeaderList } from '../shared/http-types.ts';
import type { Backend } from '../balancer/backend.ts';
import { FastCgiPool } from '../fastcgi/pool.ts';
import { fastCgiPoolOptions } from '../fastcgi/from-config.ts';
import { buildParams } from '../fastcgi/params.ts';
import { FastCgiError } from '../fastcgi/errors.ts';
import type { ScriptTarget } from '../fastcgi/script.ts';
import { interimFilteringConnector } from './interim-filter.ts';
import { firstHeader } from './headers.ts';

/** What an upstream needs of a request (the forwarder's ForwardJob carries it). */
export interface UpstreamRequest {
  req: FrontRequest;
  /** The request body as the backend should get it, or null. */
  body: Readable | null;
  /** Exact body length when quiclb knows it beyond the request's own Content-Length (a spooled body). */
  bodyLength?: number;
  /** Backend request header fields, flat [name, value, ...] (upstreamHeaders). */
  headers: string[];
  /** The PHP script the request runs (FastCGI backends only). */
  script?: ScriptTarget;
}

export interface Upstream {
  /** Starts one attempt; every outcome reaches the handler. May throw when the request cannot be sent as given. */
  dispatch(r: UpstreamRequest, handler: Dispatcher.DispatchHandler): void;
  close(): Promise<void>;
  /** True once close() was called. */
  readonly closed: boolean;
}

export function httpUpstream(backend: Backend, config: Config): Upstream {
  const lb = config.loadBalancer;
  const pool = new Pool(`http://${backend.host.includes(':') ? `[${backend.host}]` : backend.host}:${backend.port}`, {
    connections: backend.maxConnections > 0 ? backend.maxConnections : 256,
    pipelining: 1,
    keepAliveTimeout: 30_000,
    connect: interimFilteringConnector({ timeout: lb.connectTimeoutMs }),
    headersTimeout: lb.backendTimeoutMs,
    bodyTimeout: Math.max(lb.backendTimeoutMs, config.server.readTimeoutMs),
  });
  return {
    dispatch(r, handler) {
      pool.dispatch({ method: r.req.method as Dispatcher.HttpMethod, path: r.req.path, headers: r.headers, body: r.body }, handler);
    },
    close: () => pool.close(),
    get closed() {
      return pool.closed;
    },
  };
}

function headerPairs(flat: string[]): HeaderList {
  const list: HeaderList = [];
  for (let i = 0; i + 1 < flat.length; i += 2) list.push([flat[i], flat[i + 1]]);
  return list;
}

/**
 * php-fpm straight, no web server between: the CGI parameters nginx's fastcgi_params would send, built from the
 * same rewritten header fields an HTTP backend gets (moodle.proxyHeaders applies alike), REMOTE_ADDR the client
 * and HTTPS=on over TLS and HTTP/3. `shards` splits backend.maxConnections between the shards' pools.
 */
export function fastCgiUpstream(b: BackendConfig, config: Config, shards: number, logger: Logger): Upstream {
  const documentRoot = wwwRootDirectory(config.moodle) ?? '';
  // PHP's error_log() lines and warnings arrive as FastCGI STDERR: logged, never sent to the client.
  const onStderr = (text: string): void => logger.warn({ backend: b.id, stderr: text.trimEnd() }, 'PHP wrote to stderr');
  const pool = new FastCgiPool(fastCgiPoolOptions(b, config, shards, onStderr));
  let closed = false;
  return {
    dispatch(r, handler) {
      const script = r.script;
      if (script === undefined) {
        throw new FastCgiError('QUICLB_FCGI_NO_SCRIPT', `${r.req.path} names no PHP script under moodle.wwwRoot (${documentRoot})`);
      }
      const { req } = r;
      const length = r.body === null ? null : (r.bodyLength ?? Number(firstHeader(req.headers, 'content-length') ?? 0));
      const params = buildParams(
        { protocol: req.protocol, method: req.method, scheme: req.scheme, authority: req.authority, path: req.path, headers: headerPairs(r.headers), remoteAddress: req.remoteAddress, remotePort: req.remotePort },
        { documentRoot, script, contentLength: length },
      );
      pool.dispatch({ params, body: r.body, contentLength: length ?? 0 }, handler);
    },
    close: () => {
      closed = true;
      return pool.close();
    },
    get closed() {
      return closed;
    },
  };
}
