// `npm run bench`: runs the scenario matrix against the direct baseline, quiclb, node15 (the 15-line Node proxy)
// and the installed peers, and writes bench/results/bench-<time>.{json,md,svg} (plus latest.*). With
// --idle-conns it measures idle-connection memory instead; with --profile it also profiles quiclb's threads.
// See bench/README.md.
import { spawnSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile, copyFile } from 'node:fs/promises';
import { cpus, hostname, tmpdir, availableParallelism } from 'node:os';
import { join } from 'node:path';
import { ensureSelfSigned } from '../src/shared/tls-material.ts';
import { parseBenchArgs, USAGE, type BenchOptions } from './lib/args.ts';
import { startBackends, type BackendSet } from './lib/backends.ts';
import { svgChart } from './lib/chart.ts';
import { findProfiles, formatSummaries, summarizeProfile, type Window } from './lib/cpuprofile.ts';
import { generatorLabel, installedTools, measureWith, pickGenerator, type MeasureContext, type Tools } from './lib/generators.ts';
import { idleMarkdown, runIdleConns } from './lib/idle-conns.ts';
import { LoadRunner, type LoadSpec } from './lib/load.ts';
import { findBin, processTree, rssBytes } from './lib/procs.ts';
import { Progress } from './lib/progress.ts';
import { markdown, ratioOf, type BenchReport, type MemoryAfter, type ScenarioResult, type TargetResult } from './lib/report.ts';
import { QUICK_SET, selectScenarios, type Scenario } from './lib/scenarios.ts';
import { PEERS, baselineProtocol, directTarget, startNginxPeer, startQuiclbTarget, type PeerEnv, type PeerName, type Target } from './lib/targets.ts';
import { wrkDurationS } from './lib/wrk.ts';
import { startFastCgiSite, startNginxFpm, startQuiclbFpm, type FastCgiSite } from './lib/fastcgi.ts';

/** "1.22.1", "2.6.12-1+deb12u4", "2.6.2": the first version-looking word a tool prints about itself. */
function versionOf(bin: string, args: string[]): string {
  const r = spawnSync(bin, args, { encoding: 'utf8' });
  // nginx -v prints on stderr.
  const text = `${r.stdout ?? ''}\n${r.stderr ?? ''}`;
  return /\d+\.\d+[\w.+~-]*/.exec(text)?.[0] ?? 'unknown';
}

function peerVersion(name: PeerName): string {
  if (name === 'node15') return `(Node ${process.versions.node})`;
  return versionOf(findBin(PEERS[name].bin)!, name === 'caddy' ? ['version'] : ['-v']);
}

function installed(name: PeerName): boolean {
  return name === 'node15' || findBin(PEERS[name].bin) !== undefined;
}

/** Peers that run in this invocation: asked for and installed. */
function activePeers(opts: BenchOptions): PeerName[] {
  return opts.peers.filter((p): p is PeerName => p in PEERS && installed(p as PeerName));
}

/** In --quick (without --scenario) nginx, HAProxy and Caddy run on a few scenarios only; node15 on all. */
function peerRuns(opts: BenchOptions, s: Scenario, peer: string): boolean {
  // FastCGI scenarios have their own peer (nginx + php-fpm, the baseline).
  if (s.fastcgi !== undefined) return false;
  return peer === 'node15' || !(opts.quick && !opts.scenario) || s.peersInQuick;
}

/**
 * The cachedcss scenarios compare caches: quiclb with its response cache against nginx with proxy_cache (the one
 * peer here with a shared cache; Debian's nginx has no HTTP/3, so the h3 row has quiclb alone).
 */
function cachePeerRuns(peers: PeerName[], s: Scenario): boolean {
  return peers.includes('nginx') && s.protocol !== 'h3';
}

/** Peers that can serve a protocol: only Caddy speaks HTTP/3 among them. */
function peerSpeaks(peer: string, s: Scenario): boolean {
  return s.protocol !== 'h3' || peer === 'caddy';
}

async function writeOut(outDir: string, stamp: string, prefix: string, files: Record<string, string>): Promise<string> {
  await mkdir(outDir, { recursive: true });
  const base = join(outDir, `${prefix}-${stamp}`);
  for (const [ext, text] of Object.entries(files)) {
    await writeFile(`${base}.${ext}`, text);
    await copyFile(`${base}.${ext}`, join(outDir, `${prefix === 'bench' ? 'latest' : `latest-${prefix}`}.${ext}`));
  }
  return base;
}

async function idleMain(opts: BenchOptions, stamp: string): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'quiclb-bench-idle-'));
  process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
  try {
    const { certFile, keyFile } = await ensureSelfSigned(join(dir, 'tls'));
    const report = await runIdleConns(opts, dir, certFile, keyFile, availableParallelism());
    const md = idleMarkdown(report);
    const base = await writeOut(opts.outDir, stamp, 'idle', { json: `${JSON.stringify(report, null, 2)}\n`, md });
    process.stdout.write(`${md}\nwrote ${base}.json, .md (and latest-idle.*) in ${report.wallS}s\n`);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const opts = parseBenchArgs(process.argv.slice(2));
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  if (opts.idleConns) return idleMain(opts, stamp);
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
  const peers = activePeers(opts);
  const tools: Tools = opts.generator === 'own' ? { wrk: undefined, h2load: undefined } : installedTools();
  const notes: string[] = [];
  if (opts.generator === 'auto') {
    if (!tools.wrk) notes.push('wrk is not installed: HTTP/1.1 closed-loop rows use h2load --h1 or our own client (apt-get install wrk).');
    if (!tools.h2load) notes.push('h2load is not installed: HTTP/2 and fixed-rate rows use our own client (apt-get install nghttp2-client).');
    if (tools.wrk && !Number.isInteger(opts.durationS)) notes.push(`wrk runs whole seconds: its rows ran ${wrkDurationS(opts.durationS)} s.`);
  }
  const profileDir = opts.profile ? join(opts.outDir, `profile-${stamp}`) : undefined;
  const dir = await mkdtemp(join(tmpdir(), 'quiclb-bench-'));
  // Also on a crash or Ctrl-C, where the finally below does not run.
  process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
  const { certFile, keyFile } = await ensureSelfSigned(join(dir, 'tls'));
  const backendSet: BackendSet = await startBackends(dir, certFile, keyFile, Math.max(1, availableParallelism()));
  const direct = directTarget(backendSet.backends, backendSet.proc);
  const runner = new LoadRunner(opts.threads);
  const ctx: MeasureContext = { runner, tools, threads: opts.threads, tmpDir: dir, backendPids: () => processTree(backendSet.proc.child.pid!) };
  const results: ScenarioResult[] = [];
  const memory: MemoryAfter[] = [];
  const targetsOf = (s: Scenario): number =>
    2 + (s.cache ? (cachePeerRuns(peers, s) ? 1 : 0) : peers.filter((p) => peerRuns(opts, s, p) && peerSpeaks(p, s)).length);
  const progress = new Progress(scenarios.reduce((n, s) => n + targetsOf(s), 0) * (opts.halfPeak ? 2 : 1));

  const measure = async (s: Scenario, target: Target, res: ScenarioResult, c: MeasureContext = ctx): Promise<void> => {
    const isBase = target.name === s.baseline;
    // The nginx backends of the direct baseline speak HTTP/1.1 only.
    const protocol = target.name === 'direct' ? baselineProtocol(s.protocol) : s.protocol;
    const endpoints = target.endpoints(protocol);
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
    const run = async (sp: LoadSpec) => {
      const g = pickGenerator(protocol, s.reuse, sp.rate > 0, opts.generator, tools);
      const plannedS = opts.warmupS + (g === 'wrk' ? wrkDurationS(opts.durationS) : opts.durationS);
      return measureWith(g, c, sp, target, progress.next(s.name, target.name, generatorLabel(g, protocol), plannedS));
    };
    try {
      const m = await run(spec);
      const base = res.results.find((r) => r.target === s.baseline);
      const tr: TargetResult = { target: target.name, protocol: endpoints[0].protocol, m, ratio: base && !isBase ? ratioOf(m, base.m) : undefined };
      res.results.push(tr);
      if (opts.halfPeak && m.rps > 0) tr.halfPeak = await run({ ...spec, rate: m.rps / 2 });
    } catch (err) {
      res.skipped.push({ target: target.name, reason: (err as Error).message.split('\n')[0] });
      progress.note(`${s.name} ${target.name}: ${(err as Error).message}`);
    }
  };

  // The php-fpm pool of the FastCGI scenarios, started on first need and shared by every worker count.
  let site: FastCgiSite | undefined;
  const measureFastCgi = async (group: Scenario[], env: PeerEnv): Promise<void> => {
    site ??= await startFastCgiSite(dir, Math.max(8, opts.connections));
    const fpmPid = site.fpm.child.pid!;
    const fctx: MeasureContext = { ...ctx, backendPids: () => processTree(fpmPid) };
    const targets: Target[] = [];
    for (const start of [startNginxFpm, startQuiclbFpm]) {
      try {
        targets.push(await start(env, site));
      } catch (err) {
        progress.note(`${start === startNginxFpm ? 'nginx + php-fpm' : 'quiclb (FastCGI)'} did not start: ${(err as Error).message}`);
      }
    }
    const runsOn = new Map<string, number>();
    try {
      for (const s of group) {
        const res: ScenarioResult = { scenario: s, results: [], skipped: [] };
        results.push(res);
        for (const t of targets) await measure(s, t, res, fctx);
        for (const r of res.results) runsOn.set(r.target, (runsOn.get(r.target) ?? 0) + 1);
      }
      for (const t of targets) if (runsOn.has(t.name)) memory.push({ workers: env.workers, target: `${t.name} (FastCGI)`, rssBytes: rssBytes(t.pids()), runs: runsOn.get(t.name)! });
    } finally {
      for (const t of targets) await t.stop();
    }
  };

  try {
    for (const shards of [...new Set(scenarios.map((s) => s.shards))]) {
      // FastCGI scenarios run against their own quiclb (FastCGI backends) and nginx + php-fpm.
      const fastcgiGroup = scenarios.filter((s) => s.shards === shards && s.fastcgi !== undefined);
      if (fastcgiGroup.length > 0) {
        const env: PeerEnv = { dir: join(dir, `w${shards}-fcgi`), backends: backendSet.backends, certFile, keyFile, workers: shards };
        await mkdir(env.dir, { recursive: true });
        await measureFastCgi(fastcgiGroup, env);
      }
      // The cachedcss scenarios run against their own quiclb (cache on) and nginx (proxy_cache).
      for (const cache of [false, true]) {
        const group = scenarios.filter((s) => s.shards === shards && s.cache === cache && s.fastcgi === undefined);
        if (group.length === 0) continue;
        const tag = `w${shards}${cache ? '-cache' : ''}`;
        const env: PeerEnv = { dir: join(dir, tag), backends: backendSet.backends, certFile, keyFile, workers: shards };
        if (profileDir) {
          const to = join(profileDir, `quiclb-${tag}`);
          await mkdir(to, { recursive: true });
          env.quiclbEnv = { NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} --cpu-prof --cpu-prof-dir=${to}`.trim() };
        }
        await mkdir(env.dir, { recursive: true });
        const wantH3 = group.some((s) => s.protocol === 'h3');
        let quiclb: Target | undefined;
        let quiclbError = '';
        try {
          quiclb = await startQuiclbTarget(env, { h3: wantH3, cache });
        } catch (err) {
          quiclbError = (err as Error).message.split('\n')[0];
          if (wantH3) {
            // HTTP/3 may be what failed: measure the TCP protocols at least.
            progress.note(`quiclb with HTTP/3 did not start (${quiclbError}); retrying without HTTP/3`);
            quiclb = await startQuiclbTarget(env, { h3: false, cache }).catch(() => undefined);
          }
        }
        const peerTargets: Target[] = [];
        if (cache) {
          if (group.some((s) => cachePeerRuns(peers, s))) {
            try {
              peerTargets.push(await startNginxPeer(env, { cache: true }));
            } catch (err) {
              progress.note(`peer nginx (proxy_cache) did not start: ${(err as Error).message}`);
            }
          }
        } else {
          for (const p of peers) {
            if (!group.some((s) => peerRuns(opts, s, p))) continue;
            try {
              peerTargets.push(await PEERS[p].start(env));
            } catch (err) {
              progress.note(`peer ${p} did not start: ${(err as Error).message}`);
            }
          }
        }
        const runsOn = new Map<string, number>();
        try {
          for (const s of group) {
            const res: ScenarioResult = { scenario: s, results: [], skipped: [] };
            results.push(res);
            await measure(s, direct, res);
            if (quiclb) await measure(s, quiclb, res);
            else res.skipped.push({ target: cache ? 'quiclb+cache' : 'quiclb', reason: `did not start: ${quiclbError}` });
            for (const t of peerTargets) {
              const runs = cache ? cachePeerRuns(peers, s) : peerRuns(opts, s, t.name) && peerSpeaks(t.name, s);
              if (runs) await measure(s, t, res);
            }
            for (const r of res.results) runsOn.set(r.target, (runsOn.get(r.target) ?? 0) + 1);
          }
          for (const t of [quiclb, ...peerTargets]) {
            if (t && runsOn.has(t.name)) memory.push({ workers: shards, target: t.name, rssBytes: rssBytes(t.pids()), runs: runsOn.get(t.name)! });
          }
        } finally {
          // quiclb writes its CPU profiles (every thread) as it exits.
          await quiclb?.stop();
          for (const t of peerTargets) await t.stop();
        }
      }
    }
  } finally {
    progress.done();
    await runner.close();
    await site?.stop();
    await backendSet.stop();
    await rm(dir, { recursive: true, force: true });
  }

  if (scenarios.some((s) => s.fastcgi !== undefined)) {
    notes.push(
      'FastCGI scenarios (fcgi-*): the baseline is nginx + php-fpm (Moodle\'s usual web server) on the same php-fpm pool, so `vs direct` ' +
        'there is quiclb over nginx; `backend cores` is php-fpm. Neither keeps FastCGI connections alive.',
    );
  }
  const toolVersions: Record<string, string> = {};
  if (tools.wrk) toolVersions.wrk = versionOf(tools.wrk, ['--version']);
  if (tools.h2load) toolVersions.h2load = versionOf(tools.h2load, ['--version']);
  const report: BenchReport = {
    meta: {
      date: new Date().toISOString(),
      host: hostname(),
      cores: availableParallelism(),
      cpuModel: cpus()[0]?.model ?? 'unknown',
      node: process.versions.node,
      mode: opts.scenario ? 'custom' : opts.quick ? 'quick' : 'full',
      mode_note: opts.scenario ? `--scenario ${opts.scenario}` : opts.quick ? `${QUICK_SET.length} representative scenarios, nginx/HAProxy/Caddy on 3` : 'every scenario',
      loadMode:
        (opts.rate > 0 ? `fixed rate ${opts.rate} req/s` : 'closed loop (max throughput)') + (opts.halfPeak ? ', then half of each peak' : ''),
      durationS: opts.durationS,
      warmupS: opts.warmupS,
      connections: opts.connections,
      streams: opts.streams,
      clientThreads: opts.threads,
      peers: Object.fromEntries(peers.map((p) => [p, peerVersion(p)])),
      tools: toolVersions,
      wallS: Math.round((performance.now() - started) / 100) / 10,
    },
    scenarios: results,
    memory,
    notes,
  };
  if (profileDir) {
    // Only the samples taken while quiclb was under measured load: start-up, warm-up and the other targets' runs
    // stay out. Each quiclb-wN directory holds the profiles of the quiclb run with N workers (quiclb-wN-cache: the
    // one with its response cache on, for the cachedcss scenarios).
    const windowsOf = (workers: number, cache: boolean): Window[] =>
      results
        .filter((r) => r.scenario.shards === workers && r.scenario.cache === cache)
        .flatMap((r) => r.results.filter((x) => x.target.startsWith('quiclb')).flatMap((x) => [x.m.windowUs, x.halfPeak?.windowUs]))
        .filter((w): w is Window => w !== undefined);
    const summaries = findProfiles(profileDir).map((f) => {
      const m = /quiclb-w(\d+)(-cache)?/.exec(f);
      return summarizeProfile(f, windowsOf(Number(m?.[1]), m?.[2] !== undefined));
    });
    const label = (x: { file: string }): string => x.file.slice(profileDir.length + 1);
    const summary = formatSummaries(summaries, 15, label);
    await writeFile(join(profileDir, 'summary.txt'), summary);
    // The whole life of each thread too (start-up included), for comparison.
    await writeFile(join(profileDir, 'summary-whole-run.txt'), formatSummaries(findProfiles(profileDir).map((f) => summarizeProfile(f)), 15, label));
    report.profile = { dir: profileDir, summary };
  }
  const md = markdown(report);
  const base = await writeOut(opts.outDir, stamp, 'bench', { json: `${JSON.stringify(report, null, 2)}\n`, md, svg: svgChart(report) });
  process.stdout.write(`${md}\nwrote ${base}.json, .md, .svg (and latest.*) in ${report.meta.wallS}s\n`);
}

main().catch((err: Error & { code?: string }) => {
  process.stderr.write(`\nbench: ${err.code ? `${err.code}: ` : ''}${err.message}\n`);
  process.exit(1);
});
