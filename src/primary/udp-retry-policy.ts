// When the primary answers with Retry (RFC 9000 §8.1.2), and what it answered recently.

/**
 * New handshakes per second across all shards, over a fixed one-second window. Above `threshold` the
 * primary makes clients prove their address with a Retry first; threshold 0 means always.
 */
export class HandshakeRate {
  private readonly threshold: number;
  private windowStart = 0;
  private inWindow = 0;

  constructor(threshold: number) {
    this.threshold = threshold;
  }

  private roll(now: number): void {
    if (now - this.windowStart >= 1000) {
      this.windowStart = now;
      this.inWindow = 0;
    }
  }

  shouldRetry(now: number): boolean {
    if (this.threshold <= 0) return true;
    this.roll(now);
    return this.inWindow >= this.threshold;
  }

  /** A new connection was handed to a shard. */
  count(now: number): void {
    this.roll(now);
    this.inWindow++;
  }
}

/**
 * Retry packets sent in the last couple of seconds, keyed by client address and original DCID, so every
 * Initial of one connection attempt gets the identical Retry (same token, same new CID). Bounded; insertion
 * order is expiry order.
 */
export class RetryCache {
  private readonly map = new Map<string, { packet: Buffer; expiresAt: number }>();
  private readonly ttlMs: number;
  private readonly maxEntries: number;

  constructor(opts: { ttlMs?: number; maxEntries?: number } = {}) {
    this.ttlMs = opts.ttlMs ?? 2000;
    this.maxEntries = opts.maxEntries ?? 4096;
  }

  get(key: string, now: number): Buffer | undefined {
    const e = this.map.get(key);
    if (e === undefined || e.expiresAt <= now) return undefined;
    return e.packet;
  }

  set(key: string, packet: Buffer, now: number): void {
    this.map.delete(key);
    if (this.map.size >= this.maxEntries) {
      const oldest = this.map.keys().next().value;
      if (oldest !== undefined) this.map.delete(oldest);
    }
    this.map.set(key, { packet, expiresAt: now + this.ttlMs });
  }

  clear(): void {
    this.map.clear();
  }

  sweep(now: number): void {
    for (const [key, e] of this.map) {
      if (e.expiresAt > now) break;
      this.map.delete(key);
    }
  }
}
