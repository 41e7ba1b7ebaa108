// FastCgiPool options for a configured backend, with the same timeouts HTTP backends get (src/proxy/forward.ts).
import type { BackendConfig, Config } from '../config/types.ts';
import type { FastCgiTarget } from './connection.ts';
import type { FastCgiPoolOptions } from './pool.ts';

export function fastCgiTarget(b: BackendConfig): FastCgiTarget {
  return b.socket !== undefined ? { socketPath: b.socket } : { host: b.host, port: b.port };
}

/** Sockets per shard to a backend without maxConnections: php-fpm's listen backlog queues what its children cannot take. */
export const UNBOUNDED_POOL_CONNECTIONS = 256;

/**
 * One pool per backend per shard.
 *
 * A kept-alive FastCGI connection holds a php-fpm child even while idle (the child waits for the next request on
 * it), so kept connections of every shard must fit in pm.max_children, or requests (and health checks) of one shard
 * wait in php-fpm's backlog for another shard's idle connections to time out. Hence: with backend.maxConnections
 * set (the operator sized it below pm.max_children, one child left for health checks), it is split across
 * `shards` and connections are kept alive; without it (0, unlimited) every request opens its own connection, as
 * nginx does by default (fastcgi_keep_conn off), and no idle connection ever holds a child.
 */
export function fastCgiPoolOptions(b: BackendConfig, config: Config, shards: number, onStderr?: (text: string) => void): FastCgiPoolOptions {
  const lb = config.loadBalancer;
  const bounded = b.maxConnections > 0;
  return {
    target: fastCgiTarget(b),
    maxConnections: bounded ? Math.max(1, Math.ceil(b.maxConnections / Math.max(1, shards))) : UNBOUNDED_POOL_CONNECTIONS,
    keepAlive: bounded,
    // Waiting for a free php-fpm connection counts like waiting to connect.
    queueTimeoutMs: lb.connectTimeoutMs,
    connectTimeoutMs: lb.connectTimeoutMs,
    headersTimeoutMs: lb.backendTimeoutMs,
    bodyTimeoutMs: Math.max(lb.backendTimeoutMs, config.server.readTimeoutMs),
    onStderr,
  };
}
