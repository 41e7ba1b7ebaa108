// `npm run bench`: runs the scenario matrix against the direct baseline, quiclb and the installed peers, and
// writes bench/results/bench-<time>.{json,md,svg} (plus latest.*). See bench/README.md.
import { spawnSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile, copyFile } from 'node:fs/promises';
import { cpus, hostname, tmpdir, availableParallelism } from 'node:os';
import { join } from 'node:path';
import { ensureSelfSigned } from '../src/shared/tls-material.ts';
import { parseBenchArgs, USAGE, type BenchOptions } from './lib/args.ts';
import { startBackends, type BackendSet } from './lib/backends.ts';
import { svgChart } from './lib/chart.ts';
import { LoadRunner, type LoadSpec } from './lib/load.ts';
import { findBin, processTree } from './lib/procs.ts';
import { Progress } from './lib/progress.ts';
import { markdown, ratioOf, type BenchReport, type ScenarioResult } from './lib/report.ts';
import { QUICK_SET, selectScenarios, type Scenario } from './lib/scenarios.ts';
import { PEERS, baselineProtocol, directTarget, startQuiclbTarget, type PeerEnv, type PeerName, type Target } from './lib/targets.ts';

/** "1.22.1", "2.6.12-1+deb12u4", "2.6.2": the first version-looking word of `nginx -v` / `haproxy -v` / `caddy version`. */
function peerVersion(name: PeerName): string {
  const r = spawnSync(findBin(PEERS[name].bin)!, name === 'caddy' ? ['version'] : ['-v'], { encoding: 'utf8' });
  // nginx -v prints on stderr.
  const text = `${r.stdout ?? ''}\n${r.stderr ?? ''}`;
  return /\d+\.\d+[\w.+~-]*/.exec(text)?.[0] ?? 'unknown';
}

/** Peers that run in this invocation: asked for, installed, and (in --quick) needed by a scenario. */
function activePeers(opts: BenchOptions, scenarios: Scenario[]): PeerName[] {
  const names = opts.peers.filter((p): p is PeerName => p in PEERS && findBin(PEERS[p as PeerName].bin) !== undefined);
  if (opts.quick && !opts.scenario && !scenarios.some((s) => s.peersInQuick)) return [];
  return names;
}

function peerRuns(opts: BenchOptions, s: Scenario): boolean {
  return !(opts.quick && !opts.scenario) || s.peersInQuick;
}

async function main(): Promise<void> {
  const opts = parseBenchArgs(process.argv.slice(2));
  const scenarios = selectScenarios({ quick: opts.quick, filter: opts.scenario, shards: opts.shards });
  if (opts.list) {
    for (const s of scenarios) process.stdout.write(`${s.name}${QUICK_SET.includes(s.name) ? '  (quick)' : ''}\n`);
    return;
  }
  if (scenarios.length === 0) {
    process.stderr.write(`bench: no scenario matches "${opts.scenario}" (--list shows them)\n${USAGE}\n`);
    process.exitCode = 2;
    return;
  }
  const started = performance.now();
  const peers = activePeers(opts, scenarios);
  const dir = await mkdtemp(join(tmpdir(), 'quiclb-bench-'));
  // Also on a crash or Ctrl-C, where the finally below does not run.
  process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
  const { certFile, keyFile } = await ensureSelfSigned(join(dir, 'tls'));
  const backendSet: BackendSet = await startBackends(dir, certFile, keyFile, Math.max(1, availableParallelism()));
  const direct = directTarget(backendSet.backends, backendSet.proc);
  const backendPids = () => processTree(backendSet.proc.child.pid!);
  const runner = new LoadRunner(opts.threads);
  const results: ScenarioResult[] = [];
  const runsPer = (s: Scenario) => 2 + (peerRuns(opts, s) ? peers.filter((p) => s.protocol !== 'h3' || p === 'caddy').length : 0);
  const progress = new Progress(scenarios.reduce((n, s) => n + runsPer(s), 0));
  const plannedS = opts.warmupS + opts.durationS;

  const measure = async (s: Scenario, target: Target, res: ScenarioResult): Promise<void> => {
    const isBase = target.name === 'direct';
    const endpoints = target.endpoints(isBase ? baselineProtocol(s.protocol) : s.protocol);
    if (!endpoints) {
      res.skipped.push({ target: target.name, reason: `no ${s.protocol} listener` });
      return;
    }
    const spec: LoadSpec = {
      endpoints,
      method: s.method,
      path: s.path,
      uploadBytes: s.uploadBytes,
      expectBytes: s.expectBytes,
      reuse: s.reuse,
      concurrency: opts.connections,
      streams: opts.streams,
      warmupMs: opts.warmupS * 1000,
      durationMs: opts.durationS * 1000,
      rate: opts.rate,
    };
    const onProgress = progress.next(s.name, target.name, plannedS);
    try {
      const m = await runner.run(spec, target, backendPids, onProgress);
      const base = res.results.find((r) => r.target === 'direct');
      res.results.push({ target: target.name, protocol: endpoints[0].protocol, m, ratio: base && !isBase ? ratioOf(m, base.m) : undefined });
    } catch (err) {
      res.skipped.push({ target: target.name, reason: (err as Error).message.split('\n')[0] });
      progress.note(`${s.name} ${target.name}: ${(err as Error).message}`);
    }
  };

  try {
    for (const shards of [...new Set(scenarios.map((s) => s.shards))]) {
      const group = scenarios.filter((s) => s.shards === shards);
      const env: PeerEnv = { dir: join(dir, `w${shards}`), backends: backendSet.backends, certFile, keyFile, workers: shards };
      await mkdir(env.dir, { recursive: true });
      const wantH3 = group.some((s) => s.protocol === 'h3');
      let quiclb: Target | undefined;
      let quiclbError = '';
      try {
        quiclb = await startQuiclbTarget(env, wantH3);
      } catch (err) {
        quiclbError = (err as Error).message.split('\n')[0];
        if (wantH3) {
          // HTTP/3 may be what failed: measure the TCP protocols at least.
          progress.note(`quiclb with HTTP/3 did not start (${quiclbError}); retrying without HTTP/3`);
          quiclb = await startQuiclbTarget(env, false).catch(() => undefined);
        }
      }
      const peerTargets: Target[] = [];
      for (const p of peers) {
        if (!group.some((s) => peerRuns(opts, s))) break;
        try {
          peerTargets.push(await PEERS[p].start(env));
        } catch (err) {
          progress.note(`peer ${p} did not start: ${(err as Error).message}`);
        }
      }
      try {
        for (const s of group) {
          const res: ScenarioResult = { scenario: s, results: [], skipped: [] };
          results.push(res);
          await measure(s, direct, res);
          if (quiclb) await measure(s, quiclb, res);
          else res.skipped.push({ target: 'quiclb', reason: `did not start: ${quiclbError}` });
          if (peerRuns(opts, s)) for (const t of peerTargets) if (t.endpoints(s.protocol)) await measure(s, t, res);
        }
      } finally {
        await quiclb?.stop();
        for (const t of peerTargets) await t.stop();
      }
    }
  } finally {
    progress.done();
    await runner.close();
    await backendSet.stop();
    await rm(dir, { recursive: true, force: true });
  }

  const report: BenchReport = {
    meta: {
      date: new Date().toISOString(),
      host: hostname(),
      cores: availableParallelism(),
      cpuModel: cpus()[0]?.model ?? 'unknown',
      node: process.versions.node,
      mode: opts.scenario ? 'custom' : opts.quick ? 'quick' : 'full',
      mode_note: opts.scenario ? `--scenario ${opts.scenario}` : opts.quick ? `${QUICK_SET.length} representative scenarios, peers on 3` : 'every scenario',
      loadMode: opts.rate > 0 ? `fixed rate ${opts.rate} req/s (latency from intended send time)` : 'closed loop (max throughput)',
      durationS: opts.durationS,
      warmupS: opts.warmupS,
      connections: opts.connections,
      streams: opts.streams,
      clientThreads: opts.threads,
      peers: Object.fromEntries(peers.map((p) => [p, peerVersion(p)])),
      wallS: Math.round((performance.now() - started) / 100) / 10,
    },
    scenarios: results,
  };
  await mkdir(opts.outDir, { recursive: true });
  const stamp = report.meta.date.replace(/[:.]/g, '-');
  const base = join(opts.outDir, `bench-${stamp}`);
  const md = markdown(report);
  await writeFile(`${base}.json`, `${JSON.stringify(report, null, 2)}\n`);
  await writeFile(`${base}.md`, md);
  await writeFile(`${base}.svg`, svgChart(report));
  for (const ext of ['json', 'md', 'svg']) await copyFile(`${base}.${ext}`, join(opts.outDir, `latest.${ext}`));
  process.stdout.write(`${md}\nwrote ${base}.json, .md, .svg (and latest.*) in ${report.meta.wallS}s\n`);
}

main().catch((err: Error & { code?: string }) => {
  process.stderr.write(`\nbench: ${err.code ? `${err.code}: ` : ''}${err.message}\n`);
  process.exit(1);
});
