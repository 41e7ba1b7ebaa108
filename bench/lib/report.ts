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
  peers: Record<string, string>;
  wallS: number;
}

export interface BenchReport {
  meta: BenchMeta;
  scenarios: ScenarioResult[];
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

function num(x: number, digits = 0): string {
  if (!Number.isFinite(x)) return '-';
  return x.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

function ms(x: number): string {
  return x >= 100 ? num(x, 0) : x >= 10 ? num(x, 1) : num(x, 2);
}

function signed(x: number): string {
  return (x >= 0 ? '+' : '') + ms(x);
}

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
  lines.push(`Peers: ${peers || 'none'}.`);
  lines.push('');
  lines.push(
    'Baseline (`direct`): the same load straight at the two nginx backends, which speak HTTP/1.1 only: plain for ' +
      'HTTP/1.1 scenarios, over TLS for HTTP/1.1+TLS, HTTP/2 and HTTP/3 scenarios (so the HTTP/2 and HTTP/3 ratios ' +
      'compare against HTTP/1.1+TLS). ratio = req/s over baseline req/s; +p50/+p99 = added latency in ms. CPU in cores ' +
      '(1.0 = one core busy): client = load-generator threads, LB = the balancer process tree, backend = the nginx backends.',
  );
  lines.push('');
  lines.push('| scenario | target | protocol | req/s | ratio | p50 ms | p90 | p99 | p99.9 | max | +p50 | +p99 | MiB/s | errors | CPU client | CPU LB | CPU backend |');
  lines.push('|---|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|');
  for (const s of report.scenarios) {
    for (const r of s.results) {
      const l = r.m.latency;
      const ratio = r.ratio;
      lines.push(
        `| ${s.scenario.name} | ${r.target} | ${PROTO_LABEL[r.protocol]} | ${num(r.m.rps)} | ${ratio ? num(ratio.rps, 2) : 'base'} | ` +
          `${ms(l.p50)} | ${ms(l.p90)} | ${ms(l.p99)} | ${ms(l.p999)} | ${ms(l.max)} | ` +
          `${ratio ? signed(ratio.addedP50Ms) : ''} | ${ratio ? signed(ratio.addedP99Ms) : ''} | ${num(r.m.mibps, 1)} | ` +
          `${num(r.m.errors)} | ${num(r.m.clientCpu, 2)} | ${r.target === 'direct' ? '' : num(r.m.targetCpu, 2)} | ${num(r.m.backendCpu, 2)} |`,
      );
    }
    for (const k of s.skipped) lines.push(`| ${s.scenario.name} | ${k.target} | skipped: ${k.reason} | | | | | | | | | | | | | | |`);
  }
  lines.push('');
  const errs = report.scenarios.flatMap((s) => s.results.filter((r) => r.m.errorSamples.length > 0).map((r) => `- ${s.scenario.name} ${r.target}: ${r.m.errorSamples.join('; ')}`));
  if (errs.length > 0) {
    lines.push('Errors seen (first samples):');
    lines.push('');
    lines.push(...errs);
    lines.push('');
  }
  return lines.join('\n');
}
