// The phases of a shard's request pipeline, in their fixed order. Adding a phase is one file and one line here.
import type { Config } from '../../config/types.ts';
import type { Logger } from '../../shared/logger.ts';
import type { SharedState } from '../../shared/state.ts';
import type { Balancer } from '../../balancer/balancer.ts';
import type { Forwarder } from '../../proxy/forward.ts';
import type { WebSocketProxy } from '../../proxy/websocket.ts';
import type { AdminContext } from '../../admin/routes.ts';
import type { RateLimiter } from '../../ratelimit/limiter.ts';
import type { ResponseCache } from '../../cache/cache.ts';
import type { Phase } from '../phase.ts';
import { countPhase } from './count.ts';
import { adminPhase } from './admin.ts';
import { redirectPhase } from './redirect.ts';
import { validatePhase } from './validate.ts';
import { limitsPhase } from './limits.ts';
import { bodyLimitPhase } from './body-limit.ts';
import { cacheLookupPhase } from './cache-lookup.ts';
import { cacheStorePhase } from './cache-store.ts';
import { affinityPhase } from './affinity.ts';
import { altSvcPhase } from './alt-svc.ts';
import { websocketPhase } from './websocket.ts';
import { staticPhase } from './static.ts';
import { xAccelPhase } from './x-accel.ts';
import { proxyPhase } from './proxy.ts';
import { compressionPhase } from './compression.ts';
import { accessLogPhase } from './access-log.ts';

export interface PhaseDeps {
  config: Config;
  state: SharedState;
  shard: number;
  balancer: Balancer;
  forwarder: Forwarder;
  websockets: WebSocketProxy;
  admin: AdminContext;
  limiter: RateLimiter;
  logger: Logger;
  /** This shard's connection to the shared response cache; undefined when the cache is off. */
  cache: ResponseCache | undefined;
}

export function buildPhases(d: PhaseDeps): Phase[] {
  const phases: Array<Phase | undefined> = [
    countPhase(d.state, d.shard), // requests by protocol and shard
    adminPhase(d.admin), // /health /stats /metrics /api/test
    redirectPhase(d.config), // plain HTTP -> HTTPS
    validatePhase(d.config), // 400/405/417 for what cannot be forwarded
    limitsPhase(d.config, d.limiter, d.logger), // 429 + Retry-After per client (rateLimit)
    bodyLimitPhase(d.config), // 413
    websocketPhase(d.config, d.websockets), // WebSocket handshakes: tunnel to a backend (or 501 when off)
    staticPhase(d.config, d.balancer), // FastCGI mode: files under moodle.wwwRoot, 404/403, the PHP script to run
    cacheLookupPhase(d.cache, d.config, d.forwarder, d.logger), // stored answers (+ the identity body compression codes)
    compressionPhase(d.config, d.state), // response + body: br / zstd / gzip
    // Stores what the client gets: after compression, before the fields of one client or connection below.
    cacheStorePhase(d.cache !== undefined), // response + body: the store's tee
    affinityPhase(d.balancer, d.config.loadBalancer.sessionPersistence), // response: Moodle session + affinity cookie
    altSvcPhase(d.config), // response: Alt-Svc h3
    xAccelPhase(d.config, d.logger), // backend response: X-Accel-Redirect streams a file from moodle.dataRoot
    proxyPhase(d.config, d.forwarder), // backend selection, header rewrite, forward with retry
    accessLogPhase(d.config, d.logger), // done: one line per request
  ];
  return phases.filter((p): p is Phase => p !== undefined);
}
