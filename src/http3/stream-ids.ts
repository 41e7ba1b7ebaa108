// QUIC stream id classes (RFC 9000 §2.1): the two low bits say who opened the stream and in which direction.

export function isClientBidi(id: number): boolean {
  return id % 4 === 0;
}

export function isClientUni(id: number): boolean {
  return id % 4 === 2;
}

/**
 * Remembers which streams of one class (ids base, base+4, ...) are finished, so late bytes for them are ignored
 * rather than taken for a new stream. Memory stays bounded: finished ids at the low end fold into a watermark, and
 * only streams finished out of order (at most the peer's open-stream limit) are kept in the set.
 */
export class FinishedStreams {
  private below: number;
  private readonly above = new Set<number>();

  constructor(base: number) {
    this.below = base;
  }

  has(id: number): boolean {
    return id < this.below || this.above.has(id);
  }

  add(id: number): void {
    if (id < this.below) return;
    this.above.add(id);
    while (this.above.delete(this.below)) this.below += 4;
  }

  get outOfOrderCount(): number {
    return this.above.size;
  }
}
