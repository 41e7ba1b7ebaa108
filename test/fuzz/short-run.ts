// The short, seeded fuzz run each test/security/fuzz-*.test.ts makes in `npm test`: prints the seed and how to
// rerun it (same seed = same inputs), prints the report, and asserts that nothing failed, that the run did
// real work (enough cases, enough distinct outcomes: a fuzz loop that never reaches an error path proves
// nothing), and that the well-behaved clients were served throughout.
import assert from 'node:assert/strict';
import type { TestContext } from 'node:test';
import { describeReport, runFuzz, type FuzzReport } from './runner.ts';
import type { Protocol } from './drivers.ts';

export interface ShortRun {
  protocol: Protocol;
  defaultSeed: number;
  durationMs: number;
  minCases: number;
  minOutcomes: number;
}

export async function shortFuzzRun(t: TestContext, run: ShortRun): Promise<FuzzReport> {
  const seed = process.env.FUZZ_SEED !== undefined ? Number(process.env.FUZZ_SEED) : run.defaultSeed;
  t.diagnostic(`fuzz ${run.protocol} seed ${seed}; rerun: FUZZ_SEED=${seed} node --test test/security/fuzz-${run.protocol}.test.ts; longer: npm run fuzz -- --protocol ${run.protocol} --seed ${seed} --minutes 10`);
  const report = await runFuzz({ protocol: run.protocol, seed, durationMs: run.durationMs });
  for (const line of describeReport(report).split('\n')) t.diagnostic(line);
  assert.deepEqual(
    report.failures.map((f) => `${f.kind}: ${f.detail.split('\n')[0]}${f.file ? ` (replay: npm run fuzz -- --replay ${f.file})` : ''}`),
    [],
    `seed ${seed}: failures`,
  );
  assert.ok(report.cases >= run.minCases, `only ${report.cases} cases ran (at least ${run.minCases} expected)`);
  assert.ok(report.outcomes.length >= run.minOutcomes, `only ${report.outcomes.length} distinct outcomes: ${report.outcomes.map(([k]) => k).join(' | ')}`);
  for (const [p, n] of Object.entries(report.normal)) {
    assert.ok(n.ok >= 3, `normal ${p} client made ${n.ok} requests`);
    assert.equal(n.failed, 0, `normal ${p} client: ${n.failures.map((f) => f.error).join('; ')}`);
  }
  if (report.rssBoundKiB > 0) assert.ok(report.rssPeakKiB <= report.rssBoundKiB, `quiclb RSS peaked at ${report.rssPeakKiB} KiB, bound ${report.rssBoundKiB} KiB`);
  return report;
}
