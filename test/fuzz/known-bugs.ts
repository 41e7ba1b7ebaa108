// Bugs the fuzzers found that are not fixed yet. Each has a failing test marked `todo` in
// test/security/fuzz-findings.test.ts; while it is listed here, a fuzz run counts its signature as "known"
// instead of failing, so the short runs in `npm test` keep guarding against everything else. Delete the entry
// when the bug is fixed (and unmark its test): the fuzz runs then fail on it again if it comes back.
export interface KnownBug {
  id: string;
  /** Matches the error-log line (message and stack) the bug produces in quiclb's log; null when it leaves none. */
  signature: RegExp | null;
  /**
   * A generator feature the fuzzers leave out while the bug is listed, for bugs that wedge quiclb (a run
   * could find nothing else after them). See avoiding().
   */
  avoid?: string;
  /**
   * Other failures that count as this bug in a run of `protocol`: a kind ('heap-growth', 'connection-leak',
   * 'backend-parse-error', ...) and optionally a pattern its detail must match.
   */
  matches?: Array<{ protocol: string; kind: string; detail?: RegExp }>;
  /** The todo test that reproduces it. */
  test: string;
}

export const KNOWN_BUGS: readonly KnownBug[] = [];

/** The listed bug that explains a failure of `kind` (with `detail`) in a run of `protocol`, if any. */
export function knownFailure(protocol: string, kind: string, detail: string): KnownBug | undefined {
  return KNOWN_BUGS.find((b) => b.matches?.some((m) => m.protocol === protocol && m.kind === kind && (m.detail === undefined || m.detail.test(detail))));
}

export function knownBugOf(errorLogLine: string): KnownBug | undefined {
  return KNOWN_BUGS.find((b) => b.signature !== null && b.signature.test(errorLogLine));
}

/**
 * Whether the generators must leave out `feature` (a listed bug wedges quiclb on it). FUZZ_NO_AVOID=1 puts
 * every feature back, to check whether a fix works before its entry is deleted.
 */
export function avoiding(feature: string): boolean {
  if (process.env.FUZZ_NO_AVOID === '1') return false;
  return KNOWN_BUGS.some((b) => b.avoid === feature);
}
