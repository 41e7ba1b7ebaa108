// FastCgiPool options for a configured backend, with the same timeouts HTTP backends get (src/proxy/forward.ts).
import type { BackendConfig, Config } from '../config/types.ts';
import type { FastCgiTarget } from './connection.ts';
import type { FastCgiPoolOptions } from './pool.ts';

export function fastCgiTarget(b: BackendConfig): FastCgiTarget {
  return b.socket !== undefined ? { socketPath: b.socket } : { host: b.host, port: b.port };
}

/**
 * One pool per backend per shard: backend.maxConnections (0 = the pool default) is split across `shards`, so
 * all shards together stay within it (and within php-fpm's pm.max_children when it is set to match).
 */
export function fastCgiPoolOptions(b: BackendConfig, config: Config, shards: number, onStderr?: (text: string) => void): FastCgiPoolOptions {
  const lb = config.loadBalancer;
  return {
    target: fastCgiTarget(b),
    maxConnections: b.maxConnections > 0 ? Math.max(1, Math.ceil(b.maxConnections / Math.max(1, shards))) : 0,
    // Waiting for a free php-fpm connection counts like waiting to connect.
    queueTimeoutMs: lb.connectTimeoutMs,
    connectTimeoutMs: lb.connectTimeoutMs,
    headersTimeoutMs: lb.backendTimeoutMs,
    bodyTimeoutMs: Math.max(lb.backendTimeoutMs, config.server.readTimeoutMs),
    onStderr,
  };
}
