// How long the supervisor waits before restarting a shard that died. A shard that keeps crashing backs
// off step by step (a crash loop must not burn the CPU the other shards serve with); one that then ran
// `healthyAfterMs` without crashing is healthy again, and its next crash restarts it after the first step,
// not the last (before, one bad hour left every later crash of that shard waiting 5 s, forever).

export interface RestartPolicy {
  /** Delay before the 1st, 2nd, ... restart of a crash streak; the last step repeats. */
  backoffMs: readonly number[];
  /** A shard that ran this long since it was ready ends its crash streak. */
  healthyAfterMs: number;
}

/**
 * 100 ms lets a shard killed by one bad request come back before clients notice; 5 s caps the cost of a
 * shard that cannot start at all (a few hundred ms of CPU per try). 30 s of clean running is far longer than
 * any start (under 1 s here) and short enough that an incident an hour ago does not slow today's restart.
 */
export const DEFAULT_RESTART_POLICY: RestartPolicy = { backoffMs: [100, 500, 1000, 5000], healthyAfterMs: 30_000 };

export class CrashBackoff {
  private readonly policy: RestartPolicy;
  /** Crashes since the shard last ran healthyAfterMs. */
  streak = 0;

  constructor(policy: RestartPolicy = DEFAULT_RESTART_POLICY) {
    if (policy.backoffMs.length === 0) throw new RangeError('RestartPolicy.backoffMs needs at least one step');
    this.policy = policy;
  }

  /**
   * The shard died after running `ranMs` since it was ready (0 when it never got ready): the delay before
   * restarting it.
   */
  onCrash(ranMs: number): number {
    if (ranMs >= this.policy.healthyAfterMs) this.streak = 0;
    const steps = this.policy.backoffMs;
    const delay = steps[Math.min(this.streak, steps.length - 1)];
    this.streak++;
    return delay;
  }
}
