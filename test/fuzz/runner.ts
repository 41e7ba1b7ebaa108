// The fuzz loop shared by `npm test` (short, seeded runs) and `npm run fuzz` (long runs): case n of seed S is
// always the same input (caseRand), cases run `concurrency` at a time, every outcome is counted, and the
// system's health is sampled every second. A run fails on a local oracle failure of one case, on any shard
// restart, uncaught exception, error-level log line, backend parse error or harmed backend, on quiclb's RSS
// above its bound, and on a well-behaved client request that failed or waited longer than the stall bound.
// Each failure is written to a replay file with the inputs that may have caused it.
import { mkdirSync, writeFileSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { setImmediate as tick, setTimeout as sleep } from 'node:timers/promises';
import { caseRand } from './random.ts';
import { DRIVERS, type Protocol } from './drivers.ts';
import { FuzzEnv, type HealthSample } from './env.ts';
import type { NormalClientStats, NormalProtocol } from './normal-clients.ts';
import { knownBugOf, knownFailure } from './known-bugs.ts';

export interface FuzzOptions {
  protocol: Protocol;
  seed: number;
  durationMs: number;
  /** Stop after this many cases even if time is left (default: no limit). */
  maxCases?: number;
  /** Where replay files go; default $TMPDIR/quiclb-fuzz. */
  outDir?: string;
  /** Longest acceptable wait of a well-behaved client request, ms (default 5000). */
  stallBoundMs?: number;
  /** quiclb RSS may grow this much over its value after warm-up, MiB (default 256; see test/security/README.md). */
  rssHeadroomMiB?: number;
  /** Live heap (all isolates, after forced full GCs) may end this much above its value after warm-up, MiB (default 16). */
  heapGrowthMiB?: number;
  /** Progress callback, every progressMs (default 5000). */
  onProgress?: (p: Progress) => void;
  progressMs?: number;
  /** Override the driver's concurrency. */
  concurrency?: number;
  workers?: number;
  /**
   * When quiclb stops answering /stats (wedged, or exited), record the failure, start a fresh quiclb and go
   * on, at most this many times (default 3): a long run is not wasted on its first hang.
   */
  maxRestarts?: number;
}

export interface Failure {
  kind: string;
  detail: string;
  /** Cases that may have caused it (the case itself for a local oracle failure). */
  cases: number[];
  file?: string;
}

export interface Progress {
  protocol: Protocol;
  seed: number;
  elapsedMs: number;
  cases: number;
  rate: number;
  outcomes: number;
  rssMiB: number;
  peakRssMiB: number;
  maxStallMs: number;
  failures: number;
}

export interface FuzzReport {
  protocol: Protocol;
  seed: number;
  cases: number;
  elapsedMs: number;
  outcomes: Array<[string, number]>;
  labels: Array<[string, number]>;
  failures: Failure[];
  /** Signatures of bugs listed in known-bugs.ts, and how often each was seen (not failures while listed). */
  known: Array<[string, number]>;
  normal: Partial<Record<NormalProtocol, NormalClientStats>>;
  maxStallMs: number;
  rssBaselineKiB: number;
  rssPeakKiB: number;
  rssBoundKiB: number;
  rssEndKiB: number;
  /** Live heap of all isolates after forced full GCs, after warm-up and at the end (bytes; 0 = not measured). */
  heapBaseline: number;
  heapEnd: number;
  /** VmRSS right after the final forced GC. */
  rssAfterGcKiB: number;
  warnings: Array<[string, number]>;
  /** Fresh quiclb processes started after a wedge. */
  restarts: number;
}

/** Normal clients used with each protocol's fuzzing: all three, so a protocol's fuzzing cannot starve another. */
const NORMAL: Record<Protocol, NormalProtocol[]> = { h1: ['h1', 'h2', 'h3'], h2: ['h1', 'h2', 'h3'], h3: ['h1', 'h2', 'h3'], qpack: [] };

interface Started {
  index: number;
  startedAt: number;
  endedAt: number;
}

const CASE_GUARD_MS = 30_000;

function outDirOf(opts: FuzzOptions): string {
  return opts.outDir ?? path.join(process.env.TMPDIR ?? '/tmp', 'quiclb-fuzz');
}

function writeReplay(opts: FuzzOptions, failure: Failure, payloads: Map<number, unknown>): string {
  const dir = outDirOf(opts);
  mkdirSync(dir, { recursive: true });
  const driver = DRIVERS[opts.protocol];
  const file = path.join(dir, `fuzz-${opts.protocol}-seed${opts.seed}-case${failure.cases[0] ?? 'none'}-${failure.kind}.json`);
  const cases = failure.cases.filter((i) => payloads.has(i)).map((i) => ({ index: i, input: driver.save(payloads.get(i)) }));
  writeFileSync(file, JSON.stringify({ protocol: opts.protocol, seed: opts.seed, failure: { kind: failure.kind, detail: failure.detail }, cases }, null, 1));
  return file;
}

/**
 * Every uncaught exception in a shard is counted in /stats and logged with its stack; the log line is judged
 * (known bug or not) as an error-log failure. The count alone fails a run only when it stays ahead of those
 * lines for two samples in a row (an exception that left no line: the log arrives a little after the count).
 */
class UncaughtTracker {
  private pending = 0;
  private reported = 0;

  check(s: HealthSample): { kind: string; detail: string } | undefined {
    const lines = s.errorLogs.filter((l) => /^(uncaught exception|unhandled promise rejection) in a shard/.test(l)).length;
    const excess = s.uncaughtErrors - lines;
    const confirmed = excess > this.reported && this.pending > this.reported;
    this.pending = excess;
    if (!confirmed) return undefined;
    this.reported = excess;
    return { kind: 'uncaught', detail: `uncaughtErrors ${s.uncaughtErrors}, ${excess} of them without a log line` };
  }
}

/** Compares a health sample with the previous one: the new failures (`known`: the id of a listed bug). */
function judge(
  s: HealthSample,
  prev: HealthSample | undefined,
  opts: Required<Pick<FuzzOptions, 'stallBoundMs'>>,
  rssBoundKiB: number,
  uncaught: UncaughtTracker,
): Array<{ kind: string; detail: string; known?: string }> {
  const out: Array<{ kind: string; detail: string; known?: string }> = [];
  if (s.statsFailed) out.push({ kind: 'stats-unavailable', detail: s.statsFailed });
  if (s.shardRestarts > (prev?.shardRestarts ?? 0)) out.push({ kind: 'shard-restart', detail: `shardRestarts ${s.shardRestarts}` });
  const u = uncaught.check(s);
  if (u) out.push(u);
  for (const line of s.errorLogs.slice(prev?.errorLogs.length ?? 0)) out.push({ kind: 'error-log', detail: line, known: knownBugOf(line)?.id });
  for (const e of s.backendParseErrors.slice(prev?.backendParseErrors.length ?? 0)) out.push({ kind: 'backend-parse-error', detail: `${e.code}: ${JSON.stringify(e.raw.slice(0, 300))}` });
  if (s.harmedBackends.length > 0 && (prev?.harmedBackends.length ?? 0) === 0) out.push({ kind: 'backend-harmed', detail: s.harmedBackends.join('; ') });
  if (rssBoundKiB > 0 && s.rssKiB > rssBoundKiB && (prev === undefined || prev.rssKiB <= rssBoundKiB)) out.push({ kind: 'rss', detail: `VmRSS ${Math.round(s.rssKiB / 1024)} MiB > bound ${Math.round(rssBoundKiB / 1024)} MiB` });
  for (const [p, n] of Object.entries(s.normal) as Array<[NormalProtocol, NormalClientStats]>) {
    const before = prev?.normal[p];
    if (n.failed > (before?.failed ?? 0)) out.push({ kind: 'normal-client-failed', detail: `${p}: ${n.failures.slice(-(n.failed - (before?.failed ?? 0))).map((f) => f.error).join('; ')}` });
    if (n.maxMs > opts.stallBoundMs && (before?.maxMs ?? 0) <= opts.stallBoundMs) out.push({ kind: 'stall', detail: `${p}: a normal request waited ${n.maxMs} ms (bound ${opts.stallBoundMs} ms)` });
  }
  return out;
}

export async function runFuzz(opts: FuzzOptions): Promise<FuzzReport> {
  const driver = DRIVERS[opts.protocol];
  const stallBoundMs = opts.stallBoundMs ?? 5000;
  const concurrency = opts.concurrency ?? driver.concurrency;
  const startEnv = () => FuzzEnv.start({ normal: NORMAL[opts.protocol], workers: opts.workers });
  let env = driver.needsEnv ? await startEnv() : null;
  const outcomes = new Map<string, number>();
  const labels = new Map<string, number>();
  const failures: Failure[] = [];
  const known = new Map<string, number>();
  let uncaught = new UncaughtTracker();
  let restarts = 0;
  /** Set while quiclb is being restarted: workers wait on it before their next case. */
  let gate: Promise<void> | null = null;
  const warnings = new Map<string, number>();
  const payloads = new Map<number, unknown>();
  const started: Started[] = [];
  let cases = 0;
  let next = 0;
  let rssBaselineKiB = 0;
  let rssPeakKiB = 0;
  let rssBoundKiB = 0;
  let prev: HealthSample | undefined;
  let heapBaseline = 0;
  /** Open TCP and QUIC connections quiclb counts after warm-up (the normal clients' and the /stats one). */
  let connBaseline = { tcp: 0, quic: 0 };
  let heapEnd = 0;
  let rssAfterGcKiB = 0;
  let lastSampleAt = Date.now();
  const t0 = Date.now();
  let normal: Partial<Record<NormalProtocol, NormalClientStats>> = {};
  /** Stops the current quiclb and folds its normal-client numbers and warnings into the run's. */
  const retire = async (e: FuzzEnv): Promise<void> => {
    const n = await e.stop();
    for (const [p, st] of Object.entries(n) as Array<[NormalProtocol, NormalClientStats]>) {
      const acc = normal[p];
      normal[p] = acc
        ? { ok: acc.ok + st.ok, failed: acc.failed + st.failed, maxMs: Math.max(acc.maxMs, st.maxMs), maxAt: st.maxMs > acc.maxMs ? st.maxAt : acc.maxAt, failures: [...acc.failures, ...st.failures].slice(-10) }
        : st;
    }
    for (const [k, c] of e.warnings) warnings.set(k, (warnings.get(k) ?? 0) + c);
  };
  const fail = (kind: string, detail: string, suspects: number[], knownId = knownFailure(opts.protocol, kind, detail)?.id): void => {
    const f: Failure = { kind, detail, cases: suspects };
    if (knownId !== undefined) {
      // A listed bug: counted, and its first few sightings saved for replay, but not a failure.
      const n = (known.get(knownId) ?? 0) + 1;
      known.set(knownId, n);
      if (n <= 2) {
        try {
          writeReplay(opts, { ...f, kind: `known-${knownId}` }, payloads);
        } catch {
          // best effort
        }
      }
      return;
    }
    try {
      f.file = writeReplay(opts, f, payloads);
    } catch {
      // the failure is reported even if the file cannot be written
    }
    failures.push(f);
  };
  try {
    const warmUp = async (e: FuzzEnv): Promise<void> => {
      // The normal clients connect and quiclb's heap settles before the baseline is taken.
      await sleep(3000);
      prev = await e.sample();
      rssBaselineKiB = prev.rssKiB;
      rssBoundKiB = rssBaselineKiB + (opts.rssHeadroomMiB ?? 256) * 1024;
      for (const k of judge(prev, undefined, { stallBoundMs }, rssBoundKiB, uncaught)) fail(k.kind, `before fuzzing: ${k.detail}`, []);
      heapBaseline = (await e.heapAfterGc())?.heapUsed ?? 0;
      connBaseline = await e.openConnections();
    };
    if (env) await warmUp(env);
    const deadline = t0 + opts.durationMs;
    const more = () => Date.now() < deadline && (opts.maxCases === undefined || next < opts.maxCases) && failures.length < 20;
    let lastProgress = Date.now();
    const sampler = async (): Promise<void> => {
      if (!env) return;
      const s = await env.sample();
      rssPeakKiB = Math.max(rssPeakKiB, s.rssKiB);
      const found = judge(s, prev, { stallBoundMs }, rssBoundKiB, uncaught);
      if (found.length > 0) {
        // Suspects: every case that was running since the previous sample, or ended less than 1 s before it.
        const suspects = started.filter((c) => c.endedAt === 0 || c.endedAt >= lastSampleAt - 1000).map((c) => c.index);
        for (const k of found) fail(k.kind, k.detail, suspects, k.known ?? knownFailure(opts.protocol, k.kind, k.detail)?.id);
      }
      prev = s;
      lastSampleAt = s.at;
      if (s.statsFailed !== undefined && restarts < (opts.maxRestarts ?? 3) && more()) {
        restarts++;
        const old = env;
        gate = (async () => {
          await retire(old);
          env = await startEnv();
          uncaught = new UncaughtTracker();
          await warmUp(env);
        })();
        await gate;
        gate = null;
      }
    };
    const worker = async (): Promise<void> => {
      while (more()) {
        if (gate) await gate;
        const index = next++;
        const r = caseRand(opts.seed, index);
        const { label, payload } = driver.generate(r);
        labels.set(label, (labels.get(label) ?? 0) + 1);
        const rec: Started = { index, startedAt: Date.now(), endedAt: 0 };
        started.push(rec);
        payloads.set(index, payload);
        let played;
        try {
          let guard: NodeJS.Timeout | undefined;
          played = await Promise.race([
            driver.play(env, payload),
            new Promise<never>((_, reject) => {
              guard = setTimeout(() => reject(new Error(`case did not finish in ${CASE_GUARD_MS} ms`)), CASE_GUARD_MS);
            }),
          ]).finally(() => clearTimeout(guard));
        } catch (err) {
          played = { key: 'fuzzer-error', problem: `the fuzz client failed: ${(err as Error).stack ?? err}` };
        }
        rec.endedAt = Date.now();
        cases++;
        outcomes.set(played.key, (outcomes.get(played.key) ?? 0) + 1);
        if (played.problem !== undefined) fail('oracle', `case ${index} (${label}): ${played.problem}`, [index]);
        // Keep only what a failure might still point at.
        while (started.length > 0 && started[0].endedAt !== 0 && started[0].endedAt < Date.now() - 10_000) payloads.delete((started.shift() as Started).index);
        if (!driver.needsEnv && cases % 200 === 0) await tick();
      }
    };
    const workers = Array.from({ length: concurrency }, () => worker());
    let running = true;
    const all = Promise.all(workers).finally(() => {
      running = false;
    });
    while (running) {
      await Promise.race([all, sleep(1000)]);
      if (env) await sampler();
      if (opts.onProgress && Date.now() - lastProgress >= (opts.progressMs ?? 5000)) {
        lastProgress = Date.now();
        opts.onProgress(progressOf());
      }
    }
    await all;
    if (env) {
      // Let the last cases' connections close, then a final look.
      await sleep(1500);
      await sampler();
      // Every fuzz connection is closed by now (by us, or by quiclb): quiclb's gauges must be back where they
      // were (QUIC connections need their draining period: up to 5 s here).
      let open = await env.openConnections();
      for (let i = 0; i < 10 && (open.tcp > connBaseline.tcp || open.quic > connBaseline.quic); i++) {
        await sleep(500);
        open = await env.openConnections();
      }
      if (open.tcp > connBaseline.tcp || open.quic > connBaseline.quic) {
        const sockets = await env.socketReport();
        fail('connection-leak', `quiclb still counts ${open.tcp} TCP and ${open.quic} QUIC connections, ${connBaseline.tcp} and ${connBaseline.quic} after warm-up, with every fuzz connection closed; shard sockets: ${sockets}`, []);
      }
      // What survives a full GC once every fuzz connection is gone is what quiclb kept: a leak if it grew.
      const heap = await env.heapAfterGc();
      rssAfterGcKiB = env.rssKiB();
      if (heap !== undefined && heapBaseline > 0) {
        heapEnd = heap.heapUsed;
        const bound = heapBaseline + (opts.heapGrowthMiB ?? 16) * 1024 * 1024;
        if (heapEnd > bound) {
          fail('heap-growth', `live heap after full GCs ${(heapEnd / 2 ** 20).toFixed(1)} MiB, ${(heapBaseline / 2 ** 20).toFixed(1)} MiB after warm-up (bound +${opts.heapGrowthMiB ?? 16} MiB): ${heap.perIsolate.map((i) => `${i.name} ${(i.heapUsed / 2 ** 20).toFixed(1)} MiB`).join(', ')}`, []);
        }
      }
    }
  } finally {
    if (env) await retire(env);
  }
  function progressOf(): Progress {
    const elapsedMs = Date.now() - t0;
    const maxStallMs = Math.max(0, ...Object.values(prev?.normal ?? {}).map((n) => (n as NormalClientStats).maxMs));
    return {
      protocol: opts.protocol,
      seed: opts.seed,
      elapsedMs,
      cases,
      rate: cases / (elapsedMs / 1000),
      outcomes: outcomes.size,
      rssMiB: Math.round((prev?.rssKiB ?? 0) / 1024),
      peakRssMiB: Math.round(rssPeakKiB / 1024),
      maxStallMs,
      failures: failures.length,
    };
  }
  const maxStallMs = Math.max(0, ...Object.values(normal).map((n) => (n as NormalClientStats).maxMs));
  return {
    protocol: opts.protocol,
    seed: opts.seed,
    cases,
    elapsedMs: Date.now() - t0,
    outcomes: [...outcomes].sort((a, b) => b[1] - a[1]),
    labels: [...labels].sort((a, b) => b[1] - a[1]),
    failures,
    known: [...known],
    normal,
    maxStallMs,
    rssBaselineKiB,
    rssPeakKiB,
    rssBoundKiB,
    rssEndKiB: prev?.rssKiB ?? 0,
    heapBaseline,
    heapEnd,
    rssAfterGcKiB,
    warnings: [...warnings].sort((a, b) => b[1] - a[1]),
    restarts,
  };
}

/** One line per finding for test output and the CLI. */
export function describeReport(r: FuzzReport): string {
  const lines = [
    `${r.protocol} seed=${r.seed}: ${r.cases} cases in ${(r.elapsedMs / 1000).toFixed(1)} s (${(r.cases / (r.elapsedMs / 1000)).toFixed(1)}/s), ${r.outcomes.length} distinct outcomes, ${r.failures.length} failures`,
  ];
  if (r.restarts > 0) lines.push(`quiclb was wedged and restarted ${r.restarts} times (see the stats-unavailable failures)`);
  if (r.rssBaselineKiB > 0) lines.push(`quiclb RSS: ${Math.round(r.rssBaselineKiB / 1024)} MiB after warm-up, peak ${Math.round(r.rssPeakKiB / 1024)} MiB, end ${Math.round(r.rssEndKiB / 1024)} MiB (bound ${Math.round(r.rssBoundKiB / 1024)} MiB), ${Math.round(r.rssAfterGcKiB / 1024)} MiB after a forced GC`);
  if (r.heapBaseline > 0) lines.push(`quiclb live heap after full GCs: ${(r.heapBaseline / 2 ** 20).toFixed(1)} MiB after warm-up, ${(r.heapEnd / 2 ** 20).toFixed(1)} MiB at the end`);
  for (const [p, n] of Object.entries(r.normal) as Array<[string, NormalClientStats]>) lines.push(`normal ${p}: ${n.ok} ok, ${n.failed} failed, longest wait ${n.maxMs} ms`);
  lines.push('outcomes:');
  for (const [k, n] of r.outcomes.slice(0, 40)) lines.push(`  ${String(n).padStart(7)}  ${k}`);
  if (r.outcomes.length > 40) lines.push(`  ... ${r.outcomes.length - 40} more`);
  if (r.warnings.length > 0) {
    lines.push('quiclb warnings:');
    for (const [k, n] of r.warnings.slice(0, 10)) lines.push(`  ${String(n).padStart(7)}  ${k}`);
  }
  for (const [id, n] of r.known) lines.push(`known bug ${id} (test/fuzz/known-bugs.ts): seen ${n} times`);
  for (const f of r.failures) lines.push(`FAILURE ${f.kind}: ${f.detail}${f.file ? `\n  replay: npm run fuzz -- --replay ${f.file}` : ''}`);
  return lines.join('\n');
}

export interface ReplayResult {
  /** Per case in the file: its outcome, and the failures seen right after it. */
  cases: Array<{ index: number; key: string; problem?: string; failures: string[] }>;
}

/** Replays a failure file's cases one at a time against a fresh quiclb, checking health after each. */
export async function replayFile(file: string): Promise<ReplayResult> {
  const data = JSON.parse(readFileSync(file, 'utf8')) as { protocol: Protocol; cases: Array<{ index: number; input: unknown }> };
  const driver = DRIVERS[data.protocol];
  const env = driver.needsEnv ? await FuzzEnv.start({ normal: [] }) : null;
  const out: ReplayResult = { cases: [] };
  const uncaught = new UncaughtTracker();
  try {
    let prev = env ? await env.sample() : undefined;
    for (const c of data.cases) {
      const played = await driver.play(env, driver.load(c.input));
      const failures: string[] = [];
      if (env) {
        await sleep(500);
        const s = await env.sample();
        for (const k of judge(s, prev, { stallBoundMs: Infinity }, 0, uncaught)) failures.push(`${k.kind}: ${k.detail}${k.known ? ` (known bug ${k.known})` : ''}`);
        prev = s;
      }
      out.cases.push({ index: c.index, key: played.key, problem: played.problem, failures });
    }
  } finally {
    if (env) await env.stop();
  }
  return out;
}
