// Budgets for client stream resets (HTTP/2 RST_STREAM, HTTP/3 RESET_STREAM / STOP_SENDING of a request whose
// response had not finished). Opening a request and cancelling it at once costs the client one packet and the
// server a dispatch, maybe a backend request: CVE-2023-44487 ("Rapid Reset"). Past a budget the connection is
// closed (HTTP/3: H3_EXCESSIVE_LOAD, RFC 9114 §8.1), per connection and per client address, so reconnecting
// does not reset the budget.

/** Resets counted in fixed windows: `record()` is false once a window holds more than `max`. */
export class ResetWindow {
  private readonly max: number;
  private readonly windowMs: number;
  private start = -Infinity;
  private count = 0;

  constructor(max: number, windowMs: number) {
    this.max = max;
    this.windowMs = windowMs;
  }

  /** Counts one reset at `now` (ms, any monotonic clock); false when it is over the budget. */
  record(now: number): boolean {
    if (now - this.start >= this.windowMs) {
      this.start = now;
      this.count = 0;
    }
    return ++this.count <= this.max;
  }
}

export type { ClientResetLimiter } from '../shared/reset-budget.ts';
import type { ClientResetLimiter } from '../shared/reset-budget.ts';

interface AddressWindow {
  start: number;
  count: number;
}

/**
 * Per-address reset budgets within one shard. Bounded: at most `maxAddresses` entries; when full, expired
 * windows are dropped first, then the oldest entries (Map keeps insertion order), counted in `evictions`.
 */
export class AddressResetLimiter implements ClientResetLimiter {
  private readonly max: number;
  private readonly windowMs: number;
  private readonly maxAddresses: number;
  private readonly table = new Map<string, AddressWindow>();
  /** Addresses forgotten while still inside their window because the table was full. */
  evictions = 0;

  constructor(max: number, windowMs: number, maxAddresses = 10_000) {
    this.max = max;
    this.windowMs = windowMs;
    this.maxAddresses = maxAddresses;
  }

  recordReset(address: string, now: number): boolean {
    let w = this.table.get(address);
    if (w === undefined) {
      if (this.table.size >= this.maxAddresses) this.makeRoom(now);
      w = { start: now, count: 0 };
      this.table.set(address, w);
    } else if (now - w.start >= this.windowMs) {
      w.start = now;
      w.count = 0;
    }
    return ++w.count <= this.max;
  }

  get size(): number {
    return this.table.size;
  }

  /** Drops expired windows, then the oldest entries, down to 90 % of the bound (one scan per 10 % of new addresses). */
  private makeRoom(now: number): void {
    for (const [k, w] of this.table) if (now - w.start >= this.windowMs) this.table.delete(k);
    const target = Math.floor(this.maxAddresses * 0.9);
    for (const k of this.table.keys()) {
      if (this.table.size <= target) break;
      this.table.delete(k);
      this.evictions++;
    }
  }
}
