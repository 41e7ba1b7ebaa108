// A short seeded fuzz run of the HTTP/1.1 request path (grammar + mutation, test/fuzz/h1): raw bytes to the
// plain port (and one case in eight over TLS with ALPN http/1.1), pipelined, split across TCP writes, slow,
// half-closed or reset, while well-behaved HTTP/1.1, HTTP/2 and HTTP/3 clients keep being served. See
// README.md here ("Fuzzing") for long runs.
import { test } from 'node:test';
import { shortFuzzRun } from '../fuzz/short-run.ts';

test('fuzz HTTP/1.1: 15 s of seeded requests leave quiclb serving, with no crash, exception or growth', { timeout: 180_000 }, async (t) => {
  await shortFuzzRun(t, { protocol: 'h1', defaultSeed: 1001, durationMs: 15_000, minCases: 150, minOutcomes: 12 });
});
