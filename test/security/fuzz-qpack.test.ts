// A short seeded fuzz run of the sans-IO HTTP/3 layer in this process (test/fuzz/h3): the QPACK decoder
// against an independent model encoder (valid input must decode to exactly the encoded fields; broken input
// may only raise H3Error), and H3ServerConnection fed whole client scripts cut and interleaved at random
// (valid scripts must yield exactly their requests; every script must keep the event-order invariants).
import { test } from 'node:test';
import { shortFuzzRun } from '../fuzz/short-run.ts';

test('fuzz QPACK and H3ServerConnection in-process: 10 s of seeded cases, model round trips and invariants hold', { timeout: 120_000 }, async (t) => {
  await shortFuzzRun(t, { protocol: 'qpack', defaultSeed: 4001, durationMs: 10_000, minCases: 1000, minOutcomes: 10 });
});
