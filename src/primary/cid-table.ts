// The primary's table of connection IDs that clients chose: Initial DCIDs (RFC 9000 §7.2) and the DCID a
// client uses after a Retry. CIDs that quiclb issued route by their encoded shard (src/wire/cid.ts) and are
// never stored here. An entry must outlive the first datagram (Chromium's ClientHello spans two Initial
// datagrams, 0-RTT packets reuse the Initial DCID) but only until the client has switched to the server's
// CID, so entries expire a fixed time after insertion; insertion order is then expiry order and the sweep
// stops at the first live entry. The table is bounded: when full, the oldest entry goes first.

interface Entry {
  shard: number;
  expiresAt: number;
}

export class CidTable {
  private readonly map = new Map<string, Entry>();
  private readonly ttlMs: number;
  private readonly maxEntries: number;
  evictions = 0;

  constructor(opts: { ttlMs?: number; maxEntries?: number } = {}) {
    this.ttlMs = opts.ttlMs ?? 15_000;
    this.maxEntries = opts.maxEntries ?? 65_536;
  }

  get size(): number {
    return this.map.size;
  }

  /** `key` is the CID's octets as latin1 text (cheap to build from a datagram, no hex formatting). */
  lookup(key: string, now: number): number {
    const e = this.map.get(key);
    if (e === undefined) return -1;
    if (e.expiresAt <= now) {
      this.map.delete(key);
      return -1;
    }
    return e.shard;
  }

  insert(key: string, shard: number, now: number): void {
    if (this.map.has(key)) this.map.delete(key);
    else if (this.map.size >= this.maxEntries) {
      const oldest = this.map.keys().next().value;
      if (oldest !== undefined) this.map.delete(oldest);
      this.evictions++;
    }
    this.map.set(key, { shard, expiresAt: now + this.ttlMs });
  }

  /** Drops expired entries; returns how many. */
  sweep(now: number): number {
    let n = 0;
    for (const [key, e] of this.map) {
      if (e.expiresAt > now) break;
      this.map.delete(key);
      n++;
    }
    return n;
  }

  /** A shard died: its connections are gone, so are their entries. */
  dropShard(shard: number): number {
    let n = 0;
    for (const [key, e] of this.map) {
      if (e.shard === shard) {
        this.map.delete(key);
        n++;
      }
    }
    return n;
  }
}
