// Latency of the last second or so, for the dashboard's sparklines. /stats reports percentiles over
// every request since start, which barely move after a few minutes of traffic; the dashboard wants
// what the backends do now. The shards' histograms only grow, so the difference between the merged
// histograms of two polls is exactly the requests recorded in between. One base per shard (the shard
// that answers the dashboard keeps it): a second browser tab polling in between shortens a window but
// never makes it wrong.
import type { Histogram } from 'hdr-histogram-js';
import { newLatencyHistogram, summarizeMs } from '../latency.ts';

/** A base younger than this is kept, so two tabs polling together do not shrink each other's window to nothing. */
const MIN_WINDOW_MS = 900;
/** A base older than this is too stale to describe "now": the window restarts. */
const MAX_WINDOW_MS = 30_000;

export interface RecentLatency {
  /** Milliseconds the window covers; 0 on the first poll (no base yet). */
  windowMs: number;
  /** Per backend index: percentiles in ms of the requests completed within the window. */
  backends: Array<{ p50: number; p99: number; count: number }>;
}

export class RecentLatencyWindow {
  private base: { at: number; histograms: Histogram[] } | undefined;

  /** `merged`: LatencyRecorder.merge() of this poll (cumulative since start); not modified. */
  observe(merged: Histogram[], now = Date.now()): RecentLatency {
    const base = this.base !== undefined && now - this.base.at <= MAX_WINDOW_MS ? this.base : undefined;
    const backends = merged.map((h, i) => {
      const old = base?.histograms[i];
      if (old === undefined) return { p50: 0, p99: 0, count: 0 };
      const recent = newLatencyHistogram();
      recent.add(h);
      // A shard restarted since the base lost its share: the difference could go negative; start over.
      if (h.totalCount < old.totalCount) return { p50: 0, p99: 0, count: 0 };
      recent.subtract(old);
      const s = summarizeMs(recent);
      return { p50: s.p50, p99: s.p99, count: s.count };
    });
    const windowMs = base === undefined ? 0 : now - base.at;
    if (base === undefined || windowMs >= MIN_WINDOW_MS) this.base = { at: now, histograms: merged };
    return { windowMs, backends };
  }
}
