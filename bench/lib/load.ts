// Main-thread side of a measurement: splits a load over the piscina worker threads, shows progress, merges the
// workers' histograms and measures the CPU time of the target's processes (from /proc) over the same window.
import { Piscina } from 'piscina';
import * as hdr from 'hdr-histogram-js';
import type { LoadResult, LoadTask, Reuse } from './load-types.ts';
import type { Endpoint, Target } from './targets.ts';
import { cpuSeconds, threadCpuSeconds } from './procs.ts';
import { quicheBindingFile } from '../../src/quic/quiche.ts';

/** CLOCK_MONOTONIC in µs: the clock V8 stamps CPU profile samples with, so windows can be matched to samples. */
export function monotonicUs(): number {
  return Number(process.hrtime.bigint() / 1000n);
}

export interface LoadSpec {
  endpoints: Endpoint[];
  method: 'GET' | 'POST';
  path: string;
  uploadBytes: number;
  expectBytes: number;
  reuse: Reuse;
  /** Total concurrency over all threads. */
  concurrency: number;
  streams: number;
  warmupMs: number;
  durationMs: number;
  /** Total requests per second; 0 = closed loop. */
  rate: number;
}

export interface Latency {
  p50: number;
  p90: number;
  p99: number;
  p999: number;
  max: number;
  mean: number;
}

export interface Measurement {
  /** Which load generator ran it: 'wrk', 'h2load', 'h2load --h1', 'own undici', 'own h3' (see generators.ts). */
  generator: string;
  requests: number;
  errors: number;
  rps: number;
  /** MiB/s of response (or upload) bodies. */
  mibps: number;
  /** Milliseconds. */
  latency: Latency;
  lateSends: number;
  errorSamples: string[];
  /** CPU used, in cores (1.0 = one core busy for the whole window). NaN where not measured (external tools). */
  clientCpu: number;
  /** The target's processes (all threads), from /proc/PID/stat utime + stime over the measured window. */
  targetCpu: number;
  backendCpu: number;
  /** quiclb only: its main thread (the primary: TCP accepts, datagram routing), cores. */
  primaryCpu?: number;
  /** req/s / targetCpu: requests per second of target CPU (per core); NaN when the CPU was not measurable. */
  rpsPerTargetCore: number;
  /** The target's resident memory right after the run (see procs.ts rssBytes). */
  targetRssBytes: number;
  /** Fixed-rate runs: the rate asked for, req/s in total. */
  offeredRps?: number;
  /** The window CPU was measured over, CLOCK_MONOTONIC µs (the clock of V8's .cpuprofile timestamps). */
  windowUs?: [number, number];
  durationS: number;
}

/**
 * Threads that may run the HTTP/3 client: all of them with the thread-safe copy of the quiche binding
 * (src/quic/quiche-binding-file.ts), one with the original (it crashes processes where more threads use it).
 * HTTP/3 load runs in its own pool so that the HTTP/1.1 and HTTP/2 threads never load quiche.
 */
export function h3ClientThreads(threads: number): number {
  return quicheBindingFile().threadSafe ? threads : 1;
}

function newPool(threads: number): Piscina {
  // atomics disabled: its idle wait would block the async load inside a worker (STYLE.md).
  return new Piscina({
    filename: new URL('./load-worker.ts', import.meta.url).href,
    minThreads: threads,
    maxThreads: threads,
    // Threads live for the whole run: no churn of quiche-loading threads.
    idleTimeout: 3_600_000,
    maxQueue: threads * 2,
    atomics: 'disabled',
  });
}

export class LoadRunner {
  readonly threads: number;
  private readonly pool: Piscina;
  private h3Pool: Piscina | undefined;

  constructor(threads: number) {
    this.threads = threads;
    this.pool = newPool(threads);
  }

  /**
   * Runs one measurement. `onProgress(elapsedS, completed)` is called about 4 times a second.
   * `target` and `backendPids` give the processes whose CPU time is measured.
   */
  async run(spec: LoadSpec, target: Target, backendPids: () => number[], onProgress: (elapsedS: number, completed: number) => void): Promise<Measurement> {
    const counters = new SharedArrayBuffer(8);
    const view = new Int32Array(counters);
    const h3 = spec.endpoints[0].protocol === 'h3';
    const maxThreads = h3 ? h3ClientThreads(this.threads) : this.threads;
    const threads = Math.max(1, Math.min(maxThreads, spec.concurrency));
    if (h3) this.h3Pool ??= newPool(h3ClientThreads(this.threads));
    const pool = h3 ? this.h3Pool! : this.pool;
    const tasks: Promise<LoadResult>[] = [];
    let cpuT0 = 0;
    let cpuB0 = 0;
    let cpuP0 = 0;
    let w0 = monotonicUs();
    const t0 = performance.now();
    const cpuStart = setTimeout(() => {
      w0 = monotonicUs();
      cpuT0 = cpuSeconds(target.pids());
      cpuB0 = cpuSeconds(backendPids());
      if (target.primaryPid !== undefined) cpuP0 = threadCpuSeconds(target.primaryPid);
    }, spec.warmupMs);
    const ticker = setInterval(() => onProgress((performance.now() - t0) / 1000, Atomics.load(view, 0)), 250);
    for (let w = 0; w < threads; w++) {
      // Spread concurrency and rate evenly; the first threads take the remainder.
      const concurrency = Math.floor(spec.concurrency / threads) + (w < spec.concurrency % threads ? 1 : 0);
      const task: LoadTask = {
        endpoints: spec.endpoints,
        method: spec.method,
        path: spec.path,
        uploadBytes: spec.uploadBytes,
        expectBytes: spec.expectBytes,
        reuse: spec.reuse,
        concurrency,
        streams: spec.streams,
        warmupMs: spec.warmupMs,
        durationMs: spec.durationMs,
        rate: spec.rate / threads,
        counters,
        offset: w,
      };
      tasks.push(pool.run(task));
    }
    let results: LoadResult[];
    try {
      results = await Promise.all(tasks);
    } finally {
      clearInterval(ticker);
      clearTimeout(cpuStart);
    }
    const windowS = Math.max(spec.durationMs / 1000, (performance.now() - t0 - spec.warmupMs) / 1000);
    const targetCpu = (cpuSeconds(target.pids()) - cpuT0) / windowS;
    const backendCpu = (cpuSeconds(backendPids()) - cpuB0) / windowS;
    const primaryCpu = target.primaryPid !== undefined ? (threadCpuSeconds(target.primaryPid) - cpuP0) / windowS : undefined;
    onProgress((performance.now() - t0) / 1000, Atomics.load(view, 0));
    const m = merge(results, spec, targetCpu, backendCpu);
    m.primaryCpu = primaryCpu;
    m.windowUs = [w0, monotonicUs()];
    m.generator = h3 ? 'own h3' : 'own undici';
    return m;
  }

  async close(): Promise<void> {
    await this.pool.destroy();
    await this.h3Pool?.destroy();
  }
}

function merge(results: LoadResult[], spec: LoadSpec, targetCpu: number, backendCpu: number): Measurement {
  const hist = hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 120_000_000, numberOfSignificantValueDigits: 3 });
  let requests = 0;
  let errors = 0;
  let bytes = 0;
  let lateSends = 0;
  let cpuUs = 0;
  let elapsed = 0;
  const errorSamples: string[] = [];
  for (const r of results) {
    hist.add(hdr.decodeFromCompressedBase64(r.histogram));
    requests += r.requests;
    errors += r.errors;
    bytes += r.bytes;
    lateSends += r.lateSends;
    cpuUs += r.cpuUserUs + r.cpuSystemUs;
    elapsed = Math.max(elapsed, r.elapsedMs);
    for (const s of r.errorSamples) if (errorSamples.length < 5 && !errorSamples.includes(s)) errorSamples.push(s);
  }
  const ms = (us: number): number => Math.round(us) / 1000;
  // Fixed rate: requests due in the window may finish after it when the server falls behind; the achieved rate
  // is what finished over the time it took, not the rate asked for.
  const durationS = spec.rate > 0 ? Math.max(spec.durationMs, elapsed) / 1000 : spec.durationMs / 1000;
  const rps = requests / durationS;
  return {
    generator: 'own',
    requests,
    errors,
    rps,
    mibps: (spec.uploadBytes > 0 ? requests * spec.uploadBytes : bytes) / durationS / 1048576,
    latency: {
      p50: ms(hist.getValueAtPercentile(50)),
      p90: ms(hist.getValueAtPercentile(90)),
      p99: ms(hist.getValueAtPercentile(99)),
      p999: ms(hist.getValueAtPercentile(99.9)),
      max: ms(hist.maxValue),
      mean: ms(hist.mean),
    },
    lateSends,
    errorSamples,
    clientCpu: cpuUs / 1e6 / Math.max(durationS, elapsed / 1000),
    targetCpu,
    backendCpu,
    rpsPerTargetCore: targetCpu > 0 ? rps / targetCpu : NaN,
    targetRssBytes: 0,
    offeredRps: spec.rate > 0 ? spec.rate : undefined,
    durationS,
  };
}
