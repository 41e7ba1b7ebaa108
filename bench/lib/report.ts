// Result model and the JSON + Markdown writers. Every balancer row carries its ratio to the direct baseline
// measured in the same run (req/s ratio, added p50 and p99), which is what stays comparable between machines.
import type { Measurement } from './load.ts';
import type { Scenario } from './scenarios.ts';
import type { Protocol } from './targets.ts';

export interface Ratio {
  /** target req/s / baseline req/s. */
  rps: number;
  /** target p50 - baseline p50, milliseconds. */
  addedP50Ms: number;
  addedP99Ms: number;
}

export interface TargetResult {
  target: string;
  /** Protocol the load spoke to this target (the baseline speaks HTTP/1.1). */
  protocol: Protocol;
  m: Measurement;
  ratio?: Ratio;
  /** --half-peak: the fixed-rate run at half of m.rps. */
  halfPeak?: Measurement;
}

export interface ScenarioResult {
  scenario: Scenario;
  results: TargetResult[];
  /** Targets that could not run this scenario, and why. */
  skipped: Array<{ target: string; reason: string }>;
}

export interface BenchMeta {
  date: string;
  host: string;
  cores: number;
  cpuModel: string;
  node: string;
  mode: 'quick' | 'full' | 'custom';
  mode_note: string;
  loadMode: string;
  durationS: number;
  warmupS: number;
  connections: number;
  streams: number;
  clientThreads: number;
  /** Versions of the peers and of the load generators that ran. */
  peers: Record<string, string>;
  tools: Record<string, string>;
  wallS: number;
}

/** RSS of a target after all the runs of one worker count (quiclb --workers N and the peers beside it). */
export interface MemoryAfter {
  workers: number;
  target: string;
  rssBytes: number;
  runs: number;
}

export interface BenchReport {
  meta: BenchMeta;
  scenarios: ScenarioResult[];
  memory: MemoryAfter[];
  /** --profile: where the .cpuprofile files are, and the summary text. */
  profile?: { dir: string; summary: string };
  notes: string[];
}

export function ratioOf(m: Measurement, base: Measurement): Ratio {
  const r3 = (x: number): number => Math.round(x * 1000) / 1000;
  return {
    rps: base.rps > 0 ? r3(m.rps / base.rps) : 0,
    addedP50Ms: r3(m.latency.p50 - base.latency.p50),
    addedP99Ms: r3(m.latency.p99 - base.latency.p99),
  };
}

const PROTO_LABEL: Record<Protocol, string> = { h1: 'HTTP/1.1', h1tls: 'HTTP/1.1+TLS', h2: 'HTTP/2', h3: 'HTTP/3' };

function num(x: number | undefined, digits = 0): string {
  if (x === undefined || !Number.isFinite(x)) return '-';
  return x.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

function ms(x: number): string {
  if (!Number.isFinite(x)) return '-';
  return x >= 100 ? num(x, 0) : x >= 10 ? num(x, 1) : x >= 1 ? num(x, 2) : num(x, 3);
}

function mib(bytes: number): string {
  return bytes > 0 ? num(bytes / 1048576, 0) : '-';
}

/** a / b to two decimals, '-' when either is missing. */
function ratio(a: number | undefined, b: number | undefined): string {
  if (a === undefined || b === undefined || !Number.isFinite(a) || !Number.isFinite(b) || b <= 0) return '-';
  return num(a / b, 2);
}

/** The latency goal at half of peak, for HTTP/1.1 and HTTP/2: reported, not asserted. */
export function meetsHalfPeakGoal(protocol: Protocol, m: Measurement): string {
  if (protocol === 'h3') return 'n/a';
  if (!Number.isFinite(m.latency.p50) || !Number.isFinite(m.latency.p99)) return '-';
  return m.latency.p50 < 0.3 && m.latency.p99 < 2 ? 'yes' : 'no';
}

export const COLUMNS_TEXT = [
  '`load gen`: the client that made the load (wrk, h2load, h2load --h1, or our own: undici, or the HTTP/3 client).',
  '`req/s`: responses with the right status and size per second of the measured window.',
  '`vs direct`: req/s over the baseline (`direct`) of the same scenario; `vs node15`: req/s over node15\'s.',
  '`LB cores`: CPU of the target\'s processes (all threads; worker processes summed) from /proc/PID/stat utime + stime over the measured window, in cores (1.0 = one core busy all the time).',
  '`req/s per LB core` = req/s / LB cores: requests the target serves per second of its CPU, the figure that does not depend on how many cores the machine had free; `per core vs node15` compares it with node15\'s.',
  '`p50` .. `max`: latency in ms, from sending a request to the end of its response. wrk: its own distribution (done() hook); h2load: computed from its --log-file (one line per request); our client: an HDR histogram. Fixed-rate runs of our client count from the intended send time (coordinated omission corrected); h2load --rps counts from the actual send.',
  '`client cores`: the load generator\'s CPU (the wrk/h2load process, or our client\'s threads); `backend cores`: the nginx backends.',
  '`LB RSS MiB`: the target\'s resident memory (VmRSS; worker processes summed) right after the run.',
];

export function markdown(report: BenchReport): string {
  const m = report.meta;
  const lines: string[] = [];
  lines.push(`# quiclb bench, ${m.date}`);
  lines.push('');
  lines.push(
    `${m.cores} cores (${m.cpuModel}), Node ${m.node}; ${m.mode} set (${m.mode_note}); ${m.loadMode}; ` +
      `${m.durationS}s measured after ${m.warmupS}s warm-up; ${m.connections} concurrent requests` +
      ` (HTTP/2 and HTTP/3 keep-alive: ${m.streams} streams per connection); ${m.clientThreads} client threads; wall time ${num(m.wallS)}s.`,
  );
  const peers = Object.entries(m.peers).map(([k, v]) => `${k} ${v}`).join(', ');
  const tools = Object.entries(m.tools).map(([k, v]) => `${k} ${v}`).join(', ');
  lines.push(`Targets beside quiclb: ${peers || 'none'}. Load generators: ${tools || 'our own client only'}.`);
  lines.push('');
  lines.push(
    'Baseline (`direct`): the same load straight at the nginx backends, which speak HTTP/1.1 only: plain for ' +
      'HTTP/1.1 scenarios, over TLS for HTTP/1.1+TLS, HTTP/2 and HTTP/3 scenarios. node15: the 15-line Node proxy ' +
      '(bench/node15.ts, one thread, whatever the worker count).',
  );
  lines.push('');
  for (const c of COLUMNS_TEXT) lines.push(`- ${c}`);
  lines.push('');
  lines.push('| scenario | target | protocol | load gen | req/s | vs direct | vs node15 | LB cores | req/s per LB core | per core vs node15 | p50 ms | p90 | p99 | p99.9 | max | MiB/s | errors | client cores | backend cores | LB RSS MiB |');
  lines.push('|---|---|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|');
  for (const s of report.scenarios) {
    const node15 = s.results.find((r) => r.target === 'node15')?.m;
    for (const r of s.results) {
      const l = r.m.latency;
      const isBase = r.target === s.scenario.baseline;
      lines.push(
        `| ${s.scenario.name} | ${r.target} | ${PROTO_LABEL[r.protocol]} | ${r.m.generator} | ${num(r.m.rps)} | ${r.ratio ? num(r.ratio.rps, 2) : 'base'} | ` +
          `${r.target === 'node15' || isBase ? '' : ratio(r.m.rps, node15?.rps)} | ${isBase ? '' : num(r.m.targetCpu, 2)} | ${isBase ? '' : num(r.m.rpsPerTargetCore)} | ` +
          `${r.target === 'node15' || isBase ? '' : ratio(r.m.rpsPerTargetCore, node15?.rpsPerTargetCore)} | ` +
          `${ms(l.p50)} | ${ms(l.p90)} | ${ms(l.p99)} | ${ms(l.p999)} | ${ms(l.max)} | ${num(r.m.mibps, 1)} | ` +
          `${num(r.m.errors)} | ${num(r.m.clientCpu, 2)} | ${num(r.m.backendCpu, 2)} | ${isBase ? '' : mib(r.m.targetRssBytes)} |`,
      );
    }
    for (const k of s.skipped) lines.push(`| ${s.scenario.name} | ${k.target} | skipped: ${k.reason} |${' |'.repeat(17)}`);
  }
  lines.push('');
  cacheTable(report, lines);
  halfPeakTable(report, lines);
  primaryTable(report, lines);
  memoryTable(report, lines);
  if (report.profile) {
    lines.push(`## CPU profile (--profile)`);
    lines.push('');
    lines.push(`Profiles: \`${report.profile.dir}\` (open a .cpuprofile in Chrome DevTools > Performance, or speedscope).`);
    lines.push('');
    lines.push('```');
    lines.push(report.profile.summary.trimEnd());
    lines.push('```');
    lines.push('');
  }
  const errs = report.scenarios.flatMap((s) =>
    s.results.flatMap((r) => [r.m, ...(r.halfPeak ? [r.halfPeak] : [])].filter((x) => x.errorSamples.length > 0).map((x) => `- ${s.scenario.name} ${r.target} (${x.generator}): ${x.errorSamples.join('; ')}`)),
  );
  if (errs.length > 0) {
    lines.push('Errors seen (first samples):');
    lines.push('');
    lines.push(...errs);
    lines.push('');
  }
  if (report.notes.length > 0) {
    lines.push('Notes:');
    lines.push('');
    for (const n of report.notes) lines.push(`- ${n}`);
    lines.push('');
  }
  return lines.join('\n');
}

/** The cachedcss scenarios side by side: quiclb's response cache against nginx's proxy_cache. */
function cacheTable(report: BenchReport, lines: string[]): void {
  const rows = report.scenarios.filter((s) => s.scenario.cache);
  if (rows.length === 0) return;
  lines.push('## Cached stylesheet (`--scenario cache`)');
  lines.push('');
  lines.push(
    `GET ${rows[0].scenario.path} (${num(rows[0].scenario.expectBytes)} bytes, \`Cache-Control: public, max-age=3600\`, nginx's ETag) ` +
      'through quiclb with its response cache on (`quiclb+cache`) and nginx with proxy_cache (`nginx+cache`, same backends, same ' +
      'workers; Debian\'s nginx has no HTTP/3). After the warm-up every request is a hit. `direct`: the backend nginx serving the file. ' +
      '`quiclb / nginx`: req/s, and req/s per LB core, of quiclb over nginx\'s.',
  );
  lines.push('');
  lines.push('| scenario | direct req/s | quiclb+cache req/s | nginx+cache req/s | quiclb / nginx | quiclb req/s per LB core | nginx req/s per LB core | per core quiclb / nginx |');
  lines.push('|---|--:|--:|--:|--:|--:|--:|--:|');
  for (const s of rows) {
    const at = (name: string) => s.results.find((r) => r.target === name)?.m;
    const [d, q, n] = [at('direct'), at('quiclb+cache'), at('nginx+cache')];
    lines.push(
      `| ${s.scenario.name} | ${num(d?.rps)} | ${num(q?.rps)} | ${num(n?.rps)} | ${ratio(q?.rps, n?.rps)} | ` +
        `${num(q?.rpsPerTargetCore)} | ${num(n?.rpsPerTargetCore)} | ${ratio(q?.rpsPerTargetCore, n?.rpsPerTargetCore)} |`,
    );
  }
  lines.push('');
}

function halfPeakTable(report: BenchReport, lines: string[]): void {
  const rows = report.scenarios.flatMap((s) => s.results.filter((r) => r.halfPeak).map((r) => ({ s, r, h: r.halfPeak! })));
  if (rows.length === 0) return;
  lines.push('## Latency at half of peak (--half-peak)');
  lines.push('');
  lines.push(
    'Each target first ran closed loop (the table above: its peak req/s), then at a fixed rate of half that. ' +
      'Goal of the per-request-cost issue for HTTP/1.1 and HTTP/2: p50 < 0.3 ms and p99 < 2 ms (reported, not asserted).',
  );
  lines.push('');
  lines.push('| scenario | target | protocol | load gen | peak req/s | offered req/s | achieved req/s | p50 ms | p90 | p99 | p99.9 | max | LB cores | errors | p50 < 0.3 ms and p99 < 2 ms |');
  lines.push('|---|---|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|');
  for (const { s, r, h } of rows) {
    const l = h.latency;
    lines.push(
      `| ${s.scenario.name} | ${r.target} | ${PROTO_LABEL[r.protocol]} | ${h.generator} | ${num(r.m.rps)} | ${num(h.offeredRps)} | ${num(h.rps)} | ` +
        `${ms(l.p50)} | ${ms(l.p90)} | ${ms(l.p99)} | ${ms(l.p999)} | ${ms(l.max)} | ${r.target === s.scenario.baseline ? '' : num(h.targetCpu, 2)} | ${num(h.errors)} | ${meetsHalfPeakGoal(r.protocol, h)} |`,
    );
  }
  lines.push('');
}

function primaryTable(report: BenchReport, lines: string[]): void {
  const rows = report.scenarios.flatMap((s) => s.results.filter((r) => r.target === 'quiclb' && r.m.primaryCpu !== undefined).map((r) => ({ s, r })));
  if (rows.length === 0) return;
  lines.push("## quiclb's primary thread");
  lines.push('');
  lines.push(
    'The primary (quiclb\'s main thread, /proc/PID/task/PID/stat) accepts TCP connections and hands them to the shards, ' +
      'and routes every QUIC datagram. On `newconn` rows each request is one accepted connection, so req/s per primary core ' +
      'is the accept rate one core sustains; on `h3` rows the primary routes every datagram of every request. ' +
      'Under 0.05 primary cores (a few 10 ms clock ticks) the ratio is left out.',
  );
  lines.push('');
  lines.push('| scenario | req/s | primary cores | shard cores (LB - primary) | req/s per primary core |');
  lines.push('|---|--:|--:|--:|--:|');
  for (const { s, r } of rows) {
    const p = r.m.primaryCpu!;
    // Below 0.05 cores the CPU is a handful of 10 ms clock ticks: the ratio would be noise.
    lines.push(`| ${s.scenario.name} | ${num(r.m.rps)} | ${num(p, 2)} | ${num(r.m.targetCpu - p, 2)} | ${p >= 0.05 ? num(r.m.rps / p) : '-'} |`);
  }
  lines.push('');
}

function memoryTable(report: BenchReport, lines: string[]): void {
  if (report.memory.length === 0) return;
  lines.push('## Memory after the runs');
  lines.push('');
  lines.push('RSS of each target after all the runs of its worker count (quiclb: one process, its shards are threads).');
  lines.push('');
  lines.push('| workers | target | runs | RSS MiB |');
  lines.push('|--:|---|--:|--:|');
  for (const x of report.memory) lines.push(`| ${x.workers} | ${x.target} | ${x.runs} | ${mib(x.rssBytes)} |`);
  lines.push('');
}
