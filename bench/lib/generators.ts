// Which load generator measures a run, and running the external ones. Closed loop, keep-alive:
//   HTTP/1.1 and HTTP/1.1+TLS -> wrk;  HTTP/2 -> h2load;
// fixed rate (--rate, --half-peak), keep-alive:
//   HTTP/1.1 and HTTP/1.1+TLS -> h2load --h1 --rps;  HTTP/2 -> h2load --rps;
// our own client (bench/lib/load-worker.ts: undici, or bench/lib/h3-client.ts) for HTTP/3, for new-connection
// runs (neither tool opens a connection per request), and wherever the tool is not installed (or --generator
// own). The external tools talk to the first endpoint only: the baseline's two backends are two server blocks
// of one nginx, served by the same worker processes, so one of them carries the same load.
// CPU of the target is read from /proc over the middle 80 % of the tool's measured phase (the tool's own
// start, connection set-up and teardown stay outside), and req/s is the tool's count over its measured phase.
import { writeFile } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { latencyFromLog, h2loadArgs, parseH2load } from './h2load.ts';
import { monotonicUs, type LoadRunner, type LoadSpec, type Measurement } from './load.ts';
import { cpuSeconds, findBin, rssBytes, startProcess, threadCpuSeconds } from './procs.ts';
import type { ProgressFn } from './progress.ts';
import type { Endpoint, Protocol, Target } from './targets.ts';
import type { Reuse } from './load-types.ts';
import { parseWrk, wrkArgs, wrkDurationS, wrkScript } from './wrk.ts';

export type GeneratorMode = 'auto' | 'own';
export type GeneratorName = 'wrk' | 'h2load' | 'h2load-h1' | 'own';

export interface Tools {
  wrk: string | undefined;
  h2load: string | undefined;
}

export function installedTools(): Tools {
  return { wrk: findBin('wrk'), h2load: findBin('h2load') };
}

export function pickGenerator(protocol: Protocol, reuse: Reuse, fixedRate: boolean, mode: GeneratorMode, tools: Tools): GeneratorName {
  if (mode === 'own' || reuse === 'newconn' || protocol === 'h3') return 'own';
  if (protocol === 'h2') return tools.h2load ? 'h2load' : 'own';
  if (fixedRate) return tools.h2load ? 'h2load-h1' : 'own';
  return tools.wrk ? 'wrk' : tools.h2load ? 'h2load-h1' : 'own';
}

export function generatorLabel(g: GeneratorName, protocol: Protocol): string {
  if (g === 'own') return protocol === 'h3' ? 'own h3' : 'own undici';
  return g === 'h2load-h1' ? 'h2load --h1' : g;
}

export interface MeasureContext {
  runner: LoadRunner;
  tools: Tools;
  /** Client threads (wrk -t, h2load -t). */
  threads: number;
  /** A scratch directory for scripts, upload files and logs. */
  tmpDir: string;
  backendPids(): number[];
}

interface CpuSample {
  at: number;
  us: number;
  target: number;
  backend: number;
  primary: number;
  client: number;
}

function sampleCpu(target: Target, backendPids: () => number[], toolPid: number): CpuSample {
  return {
    at: performance.now(),
    us: monotonicUs(),
    target: cpuSeconds(target.pids()),
    backend: cpuSeconds(backendPids()),
    primary: target.primaryPid !== undefined ? threadCpuSeconds(target.primaryPid) : 0,
    client: cpuSeconds([toolPid]),
  };
}

function url(ep: Endpoint, path: string): string {
  return `${ep.protocol === 'h1' ? 'http' : 'https'}://127.0.0.1:${ep.port}${path}`;
}

let runSeq = 0;

/** Runs one measurement with the generator `g` (see pickGenerator) and adds RSS and per-core figures. */
export async function measureWith(g: GeneratorName, ctx: MeasureContext, spec: LoadSpec, target: Target, onProgress: ProgressFn): Promise<Measurement> {
  const m = g === 'own' ? await ctx.runner.run(spec, target, () => ctx.backendPids(), onProgress) : await runExternal(g, ctx, spec, target, onProgress);
  m.targetRssBytes = rssBytes(target.pids());
  m.rpsPerTargetCore = m.targetCpu > 0 ? m.rps / m.targetCpu : NaN;
  if (spec.rate > 0) m.offeredRps = spec.rate;
  return m;
}

/** An external tool's command line, when its measured phase runs, and how to read its output. */
interface ToolRun {
  bin: string;
  args: string[];
  /** When the measured phase starts, ms after the tool is spawned, and how long it lasts. */
  phaseStartMs: number;
  phaseMs: number;
  /** Requests, errors, latency and rates from the tool's output (CPU figures are filled in by the caller). */
  read(out: string): Measurement;
}

async function wrkRun(ctx: MeasureContext, spec: LoadSpec, seq: number): Promise<ToolRun> {
  const ep = spec.endpoints[0];
  const script = join(ctx.tmpDir, `wrk-${seq}.lua`);
  await writeFile(script, wrkScript(spec.method, spec.uploadBytes));
  const phaseMs = wrkDurationS(spec.durationMs / 1000) * 1000;
  const args = wrkArgs({ url: url(ep, spec.path), method: spec.method, uploadBytes: spec.uploadBytes, threads: ctx.threads, connections: spec.concurrency, durationS: phaseMs / 1000, scriptFile: script });
  return {
    bin: ctx.tools.wrk!,
    args,
    phaseStartMs: 0,
    phaseMs,
    read(out) {
      const w = parseWrk(out);
      const errors = w.errors.connect + w.errors.read + w.errors.write + w.errors.status + w.errors.timeout;
      const samples: string[] = [];
      for (const [k, v] of Object.entries(w.errors)) if (v > 0) samples.push(`wrk: ${v} ${k} errors`);
      // wrk counts response bytes with headers: a shorter average than the body alone means short answers.
      const short = w.requests > 0 && w.bytes / w.requests < spec.expectBytes;
      if (short) samples.push(`responses average ${Math.round(w.bytes / w.requests)} bytes with headers, the body alone should be ${spec.expectBytes}`);
      // wrk counts answers >= 400 in its requests and in errors.status.
      const requests = w.requests - w.errors.status;
      const m = base(requests / w.durationS, requests, errors + (short ? 1 : 0), w.durationS, spec);
      m.latency = w.latency;
      m.errorSamples = samples;
      return m;
    },
  };
}

async function h2loadRun(g: GeneratorName, ctx: MeasureContext, spec: LoadSpec, seq: number): Promise<ToolRun> {
  const h1 = g === 'h2load-h1';
  const streams = h1 ? 1 : Math.max(1, spec.streams);
  const clients = Math.max(1, Math.ceil(spec.concurrency / streams));
  let dataFile: string | undefined;
  if (spec.uploadBytes > 0) {
    dataFile = join(ctx.tmpDir, `upload-${spec.uploadBytes}.bin`);
    await writeFile(dataFile, Buffer.alloc(spec.uploadBytes, 120));
  }
  const logFile = join(ctx.tmpDir, `h2load-${seq}.log`);
  const args = h2loadArgs({
    url: url(spec.endpoints[0], spec.path),
    h1,
    clients,
    streams,
    threads: ctx.threads,
    durationMs: spec.durationMs,
    warmupMs: spec.warmupMs,
    rpsPerClient: spec.rate > 0 ? spec.rate / clients : 0,
    logFile,
    dataFile,
  });
  return {
    bin: ctx.tools.h2load!,
    args,
    phaseStartMs: spec.warmupMs,
    phaseMs: spec.durationMs,
    read(out) {
      const h = parseH2load(out);
      const samples: string[] = [];
      if (h.failed > 0) samples.push(`h2load: ${h.failed} failed (${h.errored} errored, ${h.timeout} timeout)`);
      // h2load's traffic counters include the warm-up, its request counts do not: only too few bytes is a sign.
      const bodyAvg = h.succeeded > 0 ? h.dataBytes / h.succeeded : spec.expectBytes;
      const short = bodyAvg < spec.expectBytes - 1;
      if (short) samples.push(`response bodies average ${bodyAvg.toFixed(0)} bytes, expected ${spec.expectBytes}`);
      const durationS = spec.durationMs / 1000;
      const m = base(h.succeeded / durationS, h.succeeded, h.failed + (short ? 1 : 0), durationS, spec);
      // Percentiles from the per-request log; h2load's own max and mean where the log is missing.
      m.latency = latencyFromLog(logFile) ?? { p50: NaN, p90: NaN, p99: NaN, p999: NaN, max: h.max, mean: h.mean };
      m.errorSamples = samples;
      return m;
    },
  };
}

async function runExternal(g: GeneratorName, ctx: MeasureContext, spec: LoadSpec, target: Target, onProgress: ProgressFn): Promise<Measurement> {
  const ep = spec.endpoints[0];
  const seq = ++runSeq;
  // Progress counts from here: the warm-up (wrk) and the tool's run read as one.
  const t0 = performance.now();
  const elapsedS = (): number => (performance.now() - t0) / 1000;
  if (g === 'wrk' && spec.warmupMs > 0) {
    // wrk has no warm-up: our own client warms the target up first, for the same time, unmeasured.
    await ctx.runner.run({ ...spec, endpoints: [ep], durationMs: spec.warmupMs, warmupMs: 0, rate: 0 }, target, () => ctx.backendPids(), () => onProgress(elapsedS()));
  }
  const tool = g === 'wrk' ? await wrkRun(ctx, spec, seq) : await h2loadRun(g, ctx, spec, seq);
  const outFile = join(ctx.tmpDir, `gen-${seq}.out`);
  const proc = startProcess(generatorLabel(g, ep.protocol), tool.bin, tool.args, outFile);
  const ticker = setInterval(() => onProgress(elapsedS()), 250);
  let first: CpuSample | undefined;
  let last: CpuSample | undefined;
  const sample = (): CpuSample => sampleCpu(target, () => ctx.backendPids(), proc.child.pid!);
  const startTimer = setTimeout(() => (first = sample()), tool.phaseStartMs + tool.phaseMs * 0.1);
  const endTimer = setTimeout(() => (last = sample()), tool.phaseStartMs + tool.phaseMs * 0.9);
  // A tool that hangs (a target that stopped answering) is stopped well after its planned end.
  const killTimer = setTimeout(() => proc.child.kill('SIGKILL'), tool.phaseStartMs + tool.phaseMs + 60_000);
  try {
    await proc.exited;
  } finally {
    clearInterval(ticker);
    clearTimeout(startTimer);
    clearTimeout(endTimer);
    clearTimeout(killTimer);
  }
  const out = readFileSync(outFile, 'utf8');
  if (proc.child.exitCode !== 0) throw new Error(`${generatorLabel(g, ep.protocol)} exited with ${proc.child.exitCode ?? proc.child.signalCode}: ${out.trim().split('\n').slice(-3).join(' | ')}`);
  const m = tool.read(out);
  // Exited before the sampling window closed: no window, so no CPU figures (NaN below).
  first ??= sample();
  last ??= sample();
  const dt = (last.at - first.at) / 1000;
  const cores = (a: number, b: number): number => (dt > 0.05 ? (b - a) / dt : NaN);
  m.generator = generatorLabel(g, ep.protocol);
  m.targetCpu = cores(first.target, last.target);
  m.backendCpu = cores(first.backend, last.backend);
  m.primaryCpu = target.primaryPid !== undefined ? cores(first.primary, last.primary) : undefined;
  m.clientCpu = cores(first.client, last.client);
  m.windowUs = [first.us, last.us];
  onProgress(elapsedS(), m.requests, true);
  return m;
}

function base(rps: number, requests: number, errors: number, durationS: number, spec: LoadSpec): Measurement {
  return {
    generator: '',
    requests,
    errors,
    rps,
    mibps: (requests * (spec.uploadBytes > 0 ? spec.uploadBytes : spec.expectBytes)) / durationS / 1048576,
    latency: { p50: NaN, p90: NaN, p99: NaN, p999: NaN, max: NaN, mean: NaN },
    lateSends: 0,
    errorSamples: [],
    clientCpu: NaN,
    targetCpu: NaN,
    backendCpu: NaN,
    rpsPerTargetCore: NaN,
    targetRssBytes: 0,
    durationS,
  };
}
