// Response compression (src/compress): br, zstd or gzip by the client's Accept-Encoding, for text the
// backend did not encode. The response filter rewrites the header fields (Content-Encoding, Vary, weak ETag,
// no Content-Length) and the body filter streams the body through the encoder.
import type { Config } from '../../config/types.ts';
import type { SharedState } from '../../shared/state.ts';
import type { BodySink } from '../../shared/http-types.ts';
import { compressionPolicy, type CompressionPlan } from '../../compress/eligibility.ts';
import { compressSink } from '../../compress/encoder.ts';
import type { Exchange } from '../exchange.ts';
import type { Phase, ResponseHead } from '../phase.ts';

type Chosen = Extract<CompressionPlan, { encoding: string }>;

export function compressionPhase(config: Config, state: SharedState): Phase | undefined {
  const policy = compressionPolicy(config.compression);
  if (!policy.enabled) return undefined;
  const chosen = new WeakMap<Exchange, Chosen>();
  return {
    name: 'compression',
    response(ex: Exchange, head: ResponseHead): void {
      const plan = policy.plan(ex.req, head.status, head.headers);
      head.headers = plan.headers;
      if (plan.encoding !== undefined) chosen.set(ex, plan);
    },
    body(ex: Exchange, _head: ResponseHead, sink: BodySink): BodySink {
      const plan = chosen.get(ex);
      if (plan === undefined) return sink;
      chosen.delete(ex);
      const c = compressSink(sink, plan.encoding, plan.level, { sizeHint: plan.sizeHint, state, onError: (err) => ex.abort(err) });
      ex.onAbort(() => c.abort());
      return c;
    },
  };
}
