// The connection IDs of QUIC connections this shard refused a moment ago (rateLimit.maxConnectionsPerClient).
// A refusal keeps no connection, so the rest of the same attempt would look like new connections: the
// second datagram of a ClientHello split over two and a retransmitted Initial (both to the client's own
// DCID: answered again with the refusal), and the client's Initial acknowledging the refusal (to the CID the
// refusal came from: dropped, nothing is owed). Neither counts the client once more. Bounded: past
// MAX_ENTRIES the oldest go first.

/** Long enough for a client's retransmissions of its first flight (its PTO starts near 1 s, RFC 9002 §6.2.2). */
export const REFUSAL_MEMORY_MS = 3000;
const MAX_ENTRIES = 4096;

export type RefusedCid = 'answer' | 'drop';

export class RecentRefusals {
  /** CID (hex) -> what to do with it until when (performance.now() ms); insertion order is age order. */
  private readonly entries = new Map<string, { what: RefusedCid; until: number }>();

  add(cid: string, what: RefusedCid, now: number): void {
    this.entries.delete(cid);
    if (this.entries.size >= MAX_ENTRIES) this.entries.delete(this.entries.keys().next().value!);
    this.entries.set(cid, { what, until: now + REFUSAL_MEMORY_MS });
  }

  /** What to do with an Initial to `cid`, or undefined when it was not refused lately. */
  check(cid: string, now: number): RefusedCid | undefined {
    const e = this.entries.get(cid);
    if (e === undefined) return undefined;
    if (now < e.until) return e.what;
    this.entries.delete(cid);
    return undefined;
  }
}
