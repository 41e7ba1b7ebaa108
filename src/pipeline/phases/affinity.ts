// Response filter: learn the Moodle session id a backend issued and pin the client to its backend with the
// affinity cookie (src/balancer/balancer.ts afterResponse).
import type { Balancer } from '../../balancer/balancer.ts';
import type { Exchange } from '../exchange.ts';
import type { Phase, ResponseHead } from '../phase.ts';

export function affinityPhase(balancer: Balancer, enabled: boolean): Phase | undefined {
  if (!enabled) return undefined;
  return {
    name: 'affinity',
    response(ex: Exchange, head: ResponseHead): void {
      const backend = ex.backend;
      if (backend === undefined) return;
      let setCookies: string[] | undefined;
      for (const [name, value] of head.headers) if (name === 'set-cookie') (setCookies ??= []).push(value);
      const cookie = balancer.afterResponse(ex.cookies(), backend, setCookies ?? [], ex.req.scheme === 'https');
      if (cookie !== undefined) head.headers.push(['set-cookie', cookie]);
    },
  };
}
