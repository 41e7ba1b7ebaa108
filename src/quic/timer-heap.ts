// One indexed binary min-heap of connection deadlines per shard. quiche hands out one timeout per
// connection (conn.timeout()); rescheduling after every packet must be O(log n) and allocation-free,
// so each entry remembers its heap slot and moves in place. A single Node timer is armed for the
// earliest deadline (TimerDriver below) instead of one setTimeout per connection or packet.

export interface HeapEntry {
  /** Absolute deadline in ms (performance.now() clock); meaningful while heapIndex >= 0. */
  deadline: number;
  /** Slot in the heap, -1 when not scheduled. Owned by TimerHeap. */
  heapIndex: number;
}

export class TimerHeap<T extends HeapEntry> {
  private readonly items: T[] = [];

  get size(): number {
    return this.items.length;
  }

  peek(): T | undefined {
    return this.items[0];
  }

  /** Insert or move `entry` to `deadline`. */
  schedule(entry: T, deadline: number): void {
    if (entry.heapIndex >= 0) {
      const old = entry.deadline;
      entry.deadline = deadline;
      if (deadline < old) this.up(entry.heapIndex);
      else if (deadline > old) this.down(entry.heapIndex);
      return;
    }
    entry.deadline = deadline;
    entry.heapIndex = this.items.length;
    this.items.push(entry);
    this.up(entry.heapIndex);
  }

  remove(entry: T): void {
    const i = entry.heapIndex;
    if (i < 0) return;
    const last = this.items.pop() as T;
    entry.heapIndex = -1;
    if (i === this.items.length) return;
    this.items[i] = last;
    last.heapIndex = i;
    this.down(i);
    this.up(last.heapIndex);
  }

  /** Removes and returns the earliest entry whose deadline is <= now, or undefined. */
  popExpired(now: number): T | undefined {
    const top = this.items[0];
    if (top === undefined || top.deadline > now) return undefined;
    this.remove(top);
    return top;
  }

  private up(i: number): void {
    const items = this.items;
    const e = items[i];
    while (i > 0) {
      const parent = (i - 1) >> 1;
      const p = items[parent];
      if (p.deadline <= e.deadline) break;
      items[i] = p;
      p.heapIndex = i;
      i = parent;
    }
    items[i] = e;
    e.heapIndex = i;
  }

  private down(i: number): void {
    const items = this.items;
    const n = items.length;
    const e = items[i];
    for (;;) {
      const l = 2 * i + 1;
      if (l >= n) break;
      const r = l + 1;
      const c = r < n && items[r].deadline < items[l].deadline ? r : l;
      if (items[c].deadline >= e.deadline) break;
      items[i] = items[c];
      items[c].heapIndex = i;
      i = c;
    }
    items[i] = e;
    e.heapIndex = i;
  }
}

/**
 * Keeps exactly one Node timer armed at the heap's earliest deadline. Call `rearm()` after a batch
 * of schedule() calls; `fire(entry)` runs for each expired entry (it is already removed from the heap).
 */
export class TimerDriver<T extends HeapEntry> {
  readonly heap = new TimerHeap<T>();
  private timer: NodeJS.Timeout | undefined;
  private armedAt = Infinity;
  private readonly fire: (entry: T) => void;
  private readonly afterFire: () => void;

  constructor(fire: (entry: T) => void, afterFire: () => void = () => {}) {
    this.fire = fire;
    this.afterFire = afterFire;
  }

  rearm(): void {
    const top = this.heap.peek();
    const next = top ? top.deadline : Infinity;
    if (next === this.armedAt) return;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.armedAt = next;
    if (next === Infinity) return;
    const delay = Math.max(0, next - performance.now());
    this.timer = setTimeout(() => this.run(), Math.ceil(delay));
  }

  stop(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.armedAt = Infinity;
  }

  private run(): void {
    this.timer = undefined;
    this.armedAt = Infinity;
    const now = performance.now();
    let e: T | undefined;
    while ((e = this.heap.popExpired(now)) !== undefined) this.fire(e);
    this.afterFire();
    this.rearm();
  }
}
