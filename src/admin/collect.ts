// Every shard's latency histograms, merged, for /stats, /metrics and the dashboard.
import type { Histogram } from 'hdr-histogram-js';
import type { AdminContext } from './context.ts';
import { LatencyRecorder } from './latency.ts';
import { slotSpan } from '../shared/state.ts';

/** Bound on the shards' latency round trip: /stats must answer even if a shard is stuck. */
export const LATENCY_COLLECT_TIMEOUT_MS = 2000;

export async function collectLatencyHistograms(ctx: AdminContext): Promise<Histogram[]> {
  // Indexed by backend slot, so wide enough for the highest slot in use.
  const count = slotSpan(ctx.slots, ctx.config.loadBalancer.backendServers.length);
  let timer: NodeJS.Timeout | undefined;
  try {
    const snapshots = await Promise.race([
      ctx.collectLatency(),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(Object.assign(new Error('latency collection timed out'), { code: 'QUICLB_ADMIN_LATENCY_TIMEOUT' })), LATENCY_COLLECT_TIMEOUT_MS);
      }),
    ]);
    return LatencyRecorder.merge(snapshots, count);
  } catch (err) {
    // Counters are still worth answering with; latency reads as "no data".
    ctx.logger?.warn({ err }, 'could not collect latency from the shards');
    return LatencyRecorder.merge([], count);
  } finally {
    clearTimeout(timer);
  }
}
