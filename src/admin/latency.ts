// Per-backend response latency, recorded by each shard into its own HdrHistograms (no sharing, no
// locks on the request path). The admin path asks every shard for snapshot() over a message round trip
// and merges them in the primary. Values are stored in microseconds (1 µs .. 5 min, 3 significant
// digits) so sub-millisecond local backends still get meaningful percentiles. The pure-JS build is
// used: WASM records faster (~27 ns vs ~63 ns per value, measured on Node 24) but needs an async
// initWebAssembly() in every worker and an explicit destroy() per histogram, and either cost is
// negligible next to proxying a request.
import { build, decodeFromCompressedBase64, encodeIntoCompressedBase64, type Histogram } from 'hdr-histogram-js';

export const LATENCY_LOWEST_US = 1;
export const LATENCY_HIGHEST_US = 300_000_000;

export function newLatencyHistogram(): Histogram {
  return build({
    useWebAssembly: false,
    bitBucketSize: 32,
    autoResize: false,
    lowestDiscernibleValue: LATENCY_LOWEST_US,
    highestTrackableValue: LATENCY_HIGHEST_US,
    numberOfSignificantValueDigits: 3,
  });
}

export class LatencyRecorder {
  /** Created on first use: ~80 KiB each, and most of the 256 possible slots are never used. */
  private readonly histograms: Array<Histogram | undefined> = [];

  /** Hot path. `ms` may be fractional (performance.now() differences); clamped to the tracked range. */
  record(backendIndex: number, ms: number): void {
    let h = this.histograms[backendIndex];
    if (!h) {
      h = newLatencyHistogram();
      this.histograms[backendIndex] = h;
    }
    const us = Math.round(ms * 1000);
    h.recordValue(us < LATENCY_LOWEST_US ? LATENCY_LOWEST_US : us > LATENCY_HIGHEST_US ? LATENCY_HIGHEST_US : us);
  }

  /** Forgets backend slot `backendIndex`'s history (a reload gave the slot to a new backend). */
  reset(backendIndex: number): void {
    this.histograms[backendIndex] = undefined;
  }

  /** One entry per backend index (dense up to the highest used); '' where nothing was recorded. */
  snapshot(): string[] {
    const out: string[] = [];
    for (let i = 0; i < this.histograms.length; i++) {
      const h = this.histograms[i];
      out.push(h && h.totalCount > 0 ? encodeIntoCompressedBase64(h) : '');
    }
    return out;
  }

  /**
   * Merge every shard's snapshot into one histogram per backend. `backendCount` pads the result so
   * callers can index by backend without checking; an empty histogram stands for "no data".
   */
  static merge(snapshots: string[][], backendCount = 0): Histogram[] {
    const width = Math.max(backendCount, ...snapshots.map((s) => s.length));
    const merged: Histogram[] = [];
    for (let i = 0; i < width; i++) merged.push(newLatencyHistogram());
    for (const shard of snapshots) {
      shard.forEach((encoded, i) => {
        if (!encoded) return;
        merged[i].add(decodeFromCompressedBase64(encoded, 32, false));
      });
    }
    return merged;
  }
}

/** Latency summary in milliseconds, as /stats shows it. */
export interface LatencySummaryMs {
  p50: number;
  p90: number;
  p99: number;
  p999: number;
  max: number;
  count: number;
}

const ms3 = (us: number): number => Math.round(us) / 1000;

export function summarizeMs(h: Histogram | undefined): LatencySummaryMs {
  if (!h || h.totalCount === 0) return { p50: 0, p90: 0, p99: 0, p999: 0, max: 0, count: 0 };
  return {
    p50: ms3(h.getValueAtPercentile(50)),
    p90: ms3(h.getValueAtPercentile(90)),
    p99: ms3(h.getValueAtPercentile(99)),
    p999: ms3(h.getValueAtPercentile(99.9)),
    max: ms3(h.maxValue),
    count: h.totalCount,
  };
}
