// One timer for a pause in a transfer on an HTTP/2 stream (a request body that stops arriving, a response
// the client stops taking): a stall check after STALL_CHECK_MS, then the configured timeout. The stall check
// is how a connection whose transport died without node noticing is found soon (H2Connection.probe): such a
// connection stalls every transfer on it, and the timeouts alone take server.readTimeout or
// server.writeTimeout to notice.

/**
 * A pause this long in a transfer makes the stream's connection check its transport. Short: the check costs
 * one PING and takes nothing from a live client. Only checked when shorter than the timeout.
 */
export const STALL_CHECK_MS = 1000;

/** Who is told; neither method may throw. */
export interface PauseOwner {
  /** The transfer paused STALL_CHECK_MS; the timeout keeps running. */
  onPauseStalled(): void;
  /** The transfer paused for the whole timeout. */
  onPauseTimeout(): void;
}

export class PauseTimer {
  private timer: NodeJS.Timeout | undefined;
  /** The stall check of this pause ran: the timer runs to the timeout. */
  private stalled = false;
  private readonly timeoutMs: number;
  private readonly owner: PauseOwner;

  /** `timeoutMs` <= 0: no timeout, the stall check only. */
  constructor(timeoutMs: number, owner: PauseOwner) {
    this.timeoutMs = timeoutMs;
    this.owner = owner;
  }

  /** A pause starts now (the transfer made progress, or began waiting). */
  restart(): void {
    if (this.timer !== undefined && !this.stalled) {
      this.timer.refresh();
      return;
    }
    this.stop();
    this.timer = setTimeout(fire, this.checksStall ? STALL_CHECK_MS : this.timeoutMs, this);
  }

  stop(): void {
    this.stalled = false;
    if (this.timer !== undefined) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
  }

  private get checksStall(): boolean {
    return this.timeoutMs <= 0 || STALL_CHECK_MS < this.timeoutMs;
  }

  fired(): void {
    this.timer = undefined;
    if (!this.stalled && this.checksStall) {
      this.stalled = true;
      if (this.timeoutMs > 0) this.timer = setTimeout(fire, this.timeoutMs - STALL_CHECK_MS, this);
      this.owner.onPauseStalled();
      return;
    }
    this.owner.onPauseTimeout();
  }
}

function fire(timer: PauseTimer): void {
  timer.fired();
}
