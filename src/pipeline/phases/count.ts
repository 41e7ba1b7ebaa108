// Counts every request by protocol and shard before anything else can answer it.
import { G_REQ_HTTP1, G_REQ_HTTP2, G_REQ_HTTP3, SC_REQUESTS, type SharedState } from '../../shared/state.ts';
import type { Protocol } from '../../shared/http-types.ts';
import type { Exchange } from '../exchange.ts';
import type { Phase } from '../phase.ts';

const PROTOCOL_COUNTER: Record<Protocol, number> = { 'HTTP/1.1': G_REQ_HTTP1, 'HTTP/2': G_REQ_HTTP2, 'HTTP/3': G_REQ_HTTP3 };

export function countPhase(state: SharedState, shard: number): Phase {
  return {
    name: 'count',
    request(ex: Exchange): boolean {
      state.addGlobal(PROTOCOL_COUNTER[ex.req.protocol]);
      state.addShardCounter(shard, SC_REQUESTS);
      return false;
    },
  };
}
