// A short seeded fuzz run of HTTP/2 (test/fuzz/h2): raw frames over TLS with ALPN h2 after the connection
// preface — SETTINGS, HEADERS with valid, mutated and malformed HPACK, CONTINUATION floods, DATA, RST_STREAM,
// WINDOW_UPDATE, PING, PRIORITY, GOAWAY, unknown types, bad lengths, flags and stream ids — while
// well-behaved HTTP/1.1, HTTP/2 and HTTP/3 clients keep being served. See README.md here ("Fuzzing").
import { test } from 'node:test';
import { shortFuzzRun } from '../fuzz/short-run.ts';

test('fuzz HTTP/2: 15 s of seeded frame sequences leave quiclb serving, with no crash, exception or growth', { timeout: 180_000 }, async (t) => {
  await shortFuzzRun(t, { protocol: 'h2', defaultSeed: 2001, durationMs: 15_000, minCases: 60, minOutcomes: 8 });
});
