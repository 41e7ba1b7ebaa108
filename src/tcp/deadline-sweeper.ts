// One coarse timer per frontend instead of a timer per connection: every tick it asks each registered
// connection to check its own deadlines (plain number comparisons). Setting a deadline on the request path
// is then a field write, not a timer operation. The tick is a quarter of the shortest timeout, so a
// deadline fires at most 25 % late (and never more than 1 s).
export interface HasDeadlines {
  check(now: number): void;
}

export class DeadlineSweeper<T extends HasDeadlines> {
  private readonly items = new Set<T>();
  private readonly timer: NodeJS.Timeout;

  constructor(shortestTimeoutMs: number) {
    const tick = Math.max(25, Math.min(1000, Math.floor(shortestTimeoutMs / 4)));
    this.timer = setInterval(() => this.sweep(), tick);
    this.timer.unref();
  }

  add(item: T): void {
    this.items.add(item);
  }

  delete(item: T): void {
    this.items.delete(item);
  }

  get size(): number {
    return this.items.size;
  }

  values(): IterableIterator<T> {
    return this.items.values();
  }

  private sweep(): void {
    const now = Date.now();
    for (const item of this.items) {
      try {
        item.check(now);
      } catch {
        // One connection's failure must not stop the others' timeouts.
      }
    }
  }

  stop(): void {
    clearInterval(this.timer);
  }
}
