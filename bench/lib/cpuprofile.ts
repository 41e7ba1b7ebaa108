// A short text summary of V8 .cpuprofile files (what `node --cpu-prof` writes, one per thread): where the
// sampled time went, by function (self time: the function itself, not what it called) and by file.
// Format (Chrome DevTools protocol, Profiler.Profile): nodes [{id, callFrame {functionName, url, lineNumber},
// children}], samples [node id per sample], timeDeltas [µs between consecutive samples].
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}

interface ProfileNode {
  id: number;
  callFrame: CallFrame;
}

interface CpuProfile {
  nodes: ProfileNode[];
  /** CLOCK_MONOTONIC µs. */
  startTime: number;
  samples: number[];
  timeDeltas: number[];
}

/** [start, end] in CLOCK_MONOTONIC µs, the clock of the samples (process.hrtime in another process: the same). */
export type Window = [number, number];

export interface SelfTime {
  /** "name file:line" (line 1-based), or V8's "(garbage collector)", "(program)", "(idle)". */
  key: string;
  file: string;
  us: number;
}

export interface ProfileSummary {
  file: string;
  /** How many measured windows the samples were taken from; undefined = the whole profile. */
  windows: number | undefined;
  /** Thread id from the file name (CPU.<date>.<time>.<pid>.<tid>.<seq>.cpuprofile): 0 is the main thread. */
  thread: number;
  totalUs: number;
  idleUs: number;
  functions: SelfTime[];
  files: Array<{ file: string; us: number }>;
}

/** Shortens a script URL to what a reader recognizes: src/..., node_modules/<pkg>/..., node:... */
export function shortUrl(url: string): string {
  if (url === '') return '';
  const nm = url.lastIndexOf('/node_modules/');
  if (nm >= 0) return url.slice(nm + 1);
  for (const dir of ['/src/', '/bench/', '/test/']) {
    const i = url.lastIndexOf(dir);
    if (i >= 0) return url.slice(i + 1);
  }
  return url.replace(/^file:\/\//, '');
}

/**
 * Self time per function and per file. With `windows`, only samples taken inside one of them count (the bench
 * passes its measured windows, so start-up and warm-up stay out).
 */
export function summarizeProfile(file: string, windows?: Window[]): ProfileSummary {
  const p = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const byId = new Map<number, ProfileNode>();
  for (const n of p.nodes) byId.set(n.id, n);
  const selfUs = new Map<number, number>();
  const inside = (t: number): boolean => windows === undefined || windows.some(([a, b]) => t >= a && t <= b);
  // Sample i is taken at startTime + timeDeltas[0..i] and lasts until sample i+1: timeDeltas[i+1].
  let t = p.startTime;
  for (let i = 0; i < p.samples.length; i++) {
    t += p.timeDeltas[i] ?? 0;
    if (!inside(t)) continue;
    const dt = i + 1 < p.timeDeltas.length ? p.timeDeltas[i + 1] : 0;
    selfUs.set(p.samples[i], (selfUs.get(p.samples[i]) ?? 0) + Math.max(0, dt));
  }
  const fns = new Map<string, SelfTime>();
  const files = new Map<string, number>();
  let totalUs = 0;
  let idleUs = 0;
  for (const [id, us] of selfUs) {
    const f = byId.get(id)!.callFrame;
    totalUs += us;
    if (f.functionName === '(idle)') {
      idleUs += us;
      continue;
    }
    const url = shortUrl(f.url);
    const key = url ? `${f.functionName || '(anonymous)'} ${url}:${f.lineNumber + 1}` : f.functionName || '(anonymous)';
    const cur = fns.get(key);
    if (cur) cur.us += us;
    else fns.set(key, { key, file: url || f.functionName, us });
    const fileKey = url || f.functionName || '(anonymous)';
    files.set(fileKey, (files.get(fileKey) ?? 0) + us);
  }
  const m = /\.(\d+)\.\d+\.cpuprofile$/.exec(basename(file));
  return {
    file,
    windows: windows?.length,
    thread: m ? Number(m[1]) : -1,
    totalUs,
    idleUs,
    functions: [...fns.values()].sort((a, b) => b.us - a.us),
    files: [...files.entries()].map(([f, us]) => ({ file: f, us })).sort((a, b) => b.us - a.us),
  };
}

/** Every .cpuprofile under dir (recursively), sorted by path. */
export function findProfiles(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...findProfiles(p));
    else if (name.endsWith('.cpuprofile')) out.push(p);
  }
  return out.sort();
}

function pct(part: number, whole: number): string {
  return whole > 0 ? `${((100 * part) / whole).toFixed(1).padStart(5)} %` : '    - %';
}

/**
 * The text summary: per profile (thread), busy time and the top `top` functions and top files by self time,
 * as a share of the thread's busy (non-idle) time.
 */
export function formatSummaries(summaries: ProfileSummary[], top = 15, label: (s: ProfileSummary) => string = (s) => s.file): string {
  const lines: string[] = [];
  for (const s of summaries) {
    const busy = s.totalUs - s.idleUs;
    const scope = s.windows === undefined ? 'whole run' : `inside ${s.windows} measured windows`;
    lines.push(`${label(s)}: thread ${s.thread}${s.thread === 0 ? ' (main: the primary)' : ' (worker: a shard)'}, ${scope}: ${(s.totalUs / 1e6).toFixed(1)} s sampled, ${(busy / 1e6).toFixed(2)} s busy (${pct(busy, s.totalUs).trim()})`);
    lines.push(`  top functions by self time (% of busy):`);
    for (const f of s.functions.slice(0, top)) lines.push(`  ${pct(f.us, busy)} ${(f.us / 1000).toFixed(0).padStart(7)} ms  ${f.key}`);
    lines.push(`  top files by self time:`);
    for (const f of s.files.slice(0, Math.min(8, top))) lines.push(`  ${pct(f.us, busy)} ${(f.us / 1000).toFixed(0).padStart(7)} ms  ${f.file}`);
    lines.push('');
  }
  return lines.join('\n');
}
