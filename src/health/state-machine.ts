// Pure health state of one backend, after Pingora's `observe_health`: a backend flips only after
// `unhealthyThreshold` consecutive failures (when up) or `healthyThreshold` consecutive successes (when
// down); a result of the other kind resets the streak. `enabled` (an operator drain) lives beside
// `healthy` and never touches the counters, so draining a backend is not mistaken for a failure.

export type HealthTransition = 'up' | 'down';

export interface HealthThresholds {
  healthyThreshold: number;
  unhealthyThreshold: number;
}

export class HealthStateMachine {
  private _healthy: boolean;
  private _enabled = true;
  private successes = 0;
  private failures = 0;
  private readonly healthyThreshold: number;
  private readonly unhealthyThreshold: number;

  constructor(initialHealthy: boolean, thresholds: HealthThresholds) {
    this._healthy = initialHealthy;
    // A threshold below 1 would flip on no evidence at all; treat it as 1.
    this.healthyThreshold = Math.max(1, Math.floor(thresholds.healthyThreshold));
    this.unhealthyThreshold = Math.max(1, Math.floor(thresholds.unhealthyThreshold));
  }

  get healthy(): boolean {
    return this._healthy;
  }

  get enabled(): boolean {
    return this._enabled;
  }

  /** Healthy and not drained: may receive traffic. */
  get available(): boolean {
    return this._healthy && this._enabled;
  }

  get thresholds(): HealthThresholds {
    return { healthyThreshold: this.healthyThreshold, unhealthyThreshold: this.unhealthyThreshold };
  }

  get consecutiveSuccesses(): number {
    return this.successes;
  }

  get consecutiveFailures(): number {
    return this.failures;
  }

  /**
   * Feed one check result; returns the transition it caused, if any. The streak is kept across the
   * transition so the caller can log the count that caused it.
   */
  observe(ok: boolean): HealthTransition | undefined {
    if (ok) {
      this.failures = 0;
      this.successes++;
      if (!this._healthy && this.successes >= this.healthyThreshold) {
        this._healthy = true;
        return 'up';
      }
    } else {
      this.successes = 0;
      this.failures++;
      if (this._healthy && this.failures >= this.unhealthyThreshold) {
        this._healthy = false;
        return 'down';
      }
    }
    return undefined;
  }

  /**
   * Adopt a state decided elsewhere (a shard's passive check marked the backend down) and start the
   * streak from zero, so coming back takes the full healthyThreshold successes.
   */
  reset(healthy: boolean): void {
    this._healthy = healthy;
    this.successes = 0;
    this.failures = 0;
  }

  setEnabled(enabled: boolean): void {
    this._enabled = enabled;
  }
}
