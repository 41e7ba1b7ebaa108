// `npm run fuzz -- --protocol h1|h2|h3|qpack|all --minutes N [--seed S] [--workers W] [--concurrency C]`
// Long fuzz runs with progress every 5 s (cases/s, outcomes, quiclb RSS, longest normal-client stall) and a
// replay file for every failure: `npm run fuzz -- --replay FILE` plays its inputs one at a time against a
// fresh quiclb and says which one broke it. Exit status 1 when any failure was found.
import { parseArgs } from 'node:util';
import { DRIVERS, PROTOCOLS, type Protocol } from './drivers.ts';
import { describeReport, replayFile, runFuzz, type FuzzReport } from './runner.ts';

const { values } = parseArgs({
  options: {
    protocol: { type: 'string', default: 'all' },
    minutes: { type: 'string', default: '10' },
    seed: { type: 'string' },
    workers: { type: 'string' },
    concurrency: { type: 'string' },
    out: { type: 'string' },
    replay: { type: 'string' },
    help: { type: 'boolean', default: false },
  },
});

if (values.help) {
  process.stdout.write(
    'npm run fuzz -- --protocol h1|h2|h3|qpack|all --minutes N [--seed S] [--workers W] [--concurrency C] [--out DIR]\n' +
      'npm run fuzz -- --replay FILE\n',
  );
  process.exit(0);
}

if (values.replay) {
  const res = await replayFile(values.replay);
  let bad = false;
  for (const c of res.cases) {
    const broken = c.problem !== undefined || c.failures.length > 0;
    bad ||= broken;
    process.stdout.write(`case ${c.index}: ${c.key}${c.problem ? `\n  oracle: ${c.problem}` : ''}${c.failures.map((f) => `\n  ${f}`).join('')}${broken ? '\n  ^ reproduces' : ''}\n`);
  }
  if (!bad) process.stdout.write('no case reproduced the failure on its own (it may need the concurrency of the original run: rerun the seed)\n');
  process.exit(bad ? 1 : 0);
}

const protocols: Protocol[] = values.protocol === 'all' ? [...PROTOCOLS] : [values.protocol as Protocol];
for (const p of protocols) if (!(p in DRIVERS)) throw new Error(`--protocol must be one of ${PROTOCOLS.join(', ')} or all`);
const minutes = Number(values.minutes);
const baseSeed = values.seed !== undefined ? Number(values.seed) : Date.now() % 1_000_000;
const reports: FuzzReport[] = [];
for (const [i, protocol] of protocols.entries()) {
  const seed = baseSeed + i;
  process.stdout.write(`fuzzing ${protocol} for ${minutes} min, seed ${seed} (load average ${(await import('node:os')).loadavg().map((l) => l.toFixed(1)).join(' ')})\n`);
  const report = await runFuzz({
    protocol,
    seed,
    durationMs: minutes * 60_000,
    outDir: values.out,
    workers: values.workers ? Number(values.workers) : undefined,
    concurrency: values.concurrency ? Number(values.concurrency) : undefined,
    onProgress: (p) =>
      process.stdout.write(
        `[${p.protocol} seed ${p.seed}] ${(p.elapsedMs / 1000).toFixed(0)} s  cases ${p.cases} (${p.rate.toFixed(1)}/s)  outcomes ${p.outcomes}  rss ${p.rssMiB} MiB (peak ${p.peakRssMiB})  stall ${p.maxStallMs} ms  failures ${p.failures}\n`,
      ),
  });
  reports.push(report);
  process.stdout.write(`${describeReport(report)}\n\n`);
}
process.exit(reports.some((r) => r.failures.length > 0) ? 1 : 0);
