// The phases of a shard's request pipeline, in their fixed order. Adding a phase is one file and one line here.
import type { Config } from '../../config/types.ts';
import type { Logger } from '../../shared/logger.ts';
import type { SharedState } from '../../shared/state.ts';
import type { Balancer } from '../../balancer/balancer.ts';
import type { Forwarder } from '../../proxy/forward.ts';
import type { AdminContext } from '../../admin/routes.ts';
import type { RateLimiter } from '../../ratelimit/limiter.ts';
import type { Phase } from '../phase.ts';
import { countPhase } from './count.ts';
import { adminPhase } from './admin.ts';
import { redirectPhase } from './redirect.ts';
import { validatePhase } from './validate.ts';
import { limitsPhase } from './limits.ts';
import { bodyLimitPhase } from './body-limit.ts';
import { affinityPhase } from './affinity.ts';
import { altSvcPhase } from './alt-svc.ts';
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
  admin: AdminContext;
  limiter: RateLimiter;
  logger: Logger;
}

export function buildPhases(d: PhaseDeps): Phase[] {
  const phases: Array<Phase | undefined> = [
    countPhase(d.state, d.shard), // requests by protocol and shard
    adminPhase(d.admin), // /health /stats /metrics /api/test
    redirectPhase(d.config), // plain HTTP -> HTTPS
    validatePhase(d.config), // 400/405/417 for what cannot be forwarded
    limitsPhase(d.config, d.limiter, d.logger), // 429 + Retry-After per client (rateLimit)
    bodyLimitPhase(d.config), // 413
    affinityPhase(d.balancer, d.config.loadBalancer.sessionPersistence), // response: Moodle session + affinity cookie
    altSvcPhase(d.config), // response: Alt-Svc h3
    compressionPhase(d.config, d.state), // response + body: br / zstd / gzip
    staticPhase(d.config, d.balancer), // FastCGI mode: files under moodle.wwwRoot, 404/403, the PHP script to run
    xAccelPhase(d.config, d.logger), // backend response: X-Accel-Redirect streams a file from moodle.dataRoot
    proxyPhase(d.config, d.forwarder), // backend selection, header rewrite, forward with retry
    accessLogPhase(d.config, d.logger), // done: one line per request
  ];
  return phases.filter((p): p is Phase => p !== undefined);
}
