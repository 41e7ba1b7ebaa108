// QUIC stream id classes (RFC 9000 §2.1): the two low bits say who opened the stream and in which direction.

export function isClientBidi(id: number): boolean {
  return id % 4 === 0;
}

export function isClientUni(id: number): boolean {
  return id % 4 === 2;
}

/**
 * Remembers which streams of one class (ids base, base+4, ...) are finished, so late bytes for them are ignored
 * rather than taken for a new stream. Finished ids at the low end fold into a watermark; streams finished out of
 * order are kept in a set until the ids below them finish too. A stream that stays open for long (a long poll)
 * or an id the peer skipped (RFC 9000 §3.2 lets it) would hold the watermark back for good, so past
 * `maxOutOfOrder` entries the watermark jumps to the lowest finished id: an id it skips counts as finished
 * (callers that still track a stream as open check their own table first).
 */
export class FinishedStreams {
  private below: number;
  private readonly above = new Set<number>();
  private readonly maxOutOfOrder: number;

  constructor(base: number, maxOutOfOrder = 1024) {
    this.below = base;
    this.maxOutOfOrder = maxOutOfOrder;
  }

  has(id: number): boolean {
    return id < this.below || this.above.has(id);
  }

  add(id: number): void {
    if (id < this.below) return;
    this.above.add(id);
    if (this.above.size > this.maxOutOfOrder) {
      let lowest = Infinity;
      for (const x of this.above) if (x < lowest) lowest = x;
      this.below = lowest;
    }
    while (this.above.delete(this.below)) this.below += 4;
  }

  get outOfOrderCount(): number {
    return this.above.size;
  }
}
