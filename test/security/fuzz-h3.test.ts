// A short seeded fuzz run of HTTP/3 end to end (test/fuzz/h3): valid and broken HTTP/3 scripts — control
// stream, QPACK encoder/decoder streams with dynamic-table inserts, request streams, reserved types, resets —
// sent over QUIC through quiclb with the bench client's raw-stream API, while well-behaved HTTP/1.1, HTTP/2
// and HTTP/3 clients keep being served; valid scripts must be answered by the backend. See README.md here.
import { test } from 'node:test';
import { shortFuzzRun } from '../fuzz/short-run.ts';

test('fuzz HTTP/3 through quiclb: 20 s of seeded scripts leave quiclb serving, with no crash, exception or growth', { timeout: 180_000 }, async (t) => {
  await shortFuzzRun(t, { protocol: 'h3', defaultSeed: 3001, durationMs: 20_000, minCases: 40, minOutcomes: 8 });
});
