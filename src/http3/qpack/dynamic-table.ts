// QPACK dynamic table as seen by a decoder (RFC 9204 §3.2): FIFO entries with absolute indices, a capacity set by
// the peer's encoder within our advertised maximum, and eviction from the oldest end.

/** [name, value], the same shape as static table entries so lookups need no wrapper objects. */
export type TableEntry = readonly [string, string];

/** RFC 9204 §3.2.1: name and value lengths in bytes plus 32 (latin1 strings: one char per byte). */
export function entrySize(name: string, value: string): number {
  return name.length + value.length + 32;
}

export class DynamicTable {
  readonly maxCapacity: number;
  capacity = 0;
  size = 0;
  /** Total inserts so far; the next entry gets this absolute index. */
  insertCount = 0;
  // Live entries are entries[head..]; entries[head] has absolute index insertCount - (entries.length - head).
  private entries: TableEntry[] = [];
  private head = 0;

  constructor(maxCapacity: number) {
    this.maxCapacity = maxCapacity;
  }

  /** Absolute index of the oldest live entry. */
  get droppedCount(): number {
    return this.insertCount - (this.entries.length - this.head);
  }

  get length(): number {
    return this.entries.length - this.head;
  }

  /** Entry at an absolute index, or undefined if evicted or not inserted yet. */
  get(absolute: number): TableEntry | undefined {
    const i = absolute - this.droppedCount;
    if (i < 0 || absolute >= this.insertCount) return undefined;
    return this.entries[this.head + i];
  }

  /** Sets the capacity, evicting as needed; false if above the maximum we advertised. */
  setCapacity(capacity: number): boolean {
    if (capacity > this.maxCapacity) return false;
    this.capacity = capacity;
    this.evictTo(capacity);
    return true;
  }

  /** Inserts at the newest end (the name/value were resolved by the caller before any eviction); false if too big. */
  insert(name: string, value: string): boolean {
    const size = entrySize(name, value);
    if (size > this.capacity) return false;
    this.evictTo(this.capacity - size);
    this.entries.push([name, value]);
    this.size += size;
    this.insertCount++;
    return true;
  }

  private evictTo(target: number): void {
    while (this.size > target) {
      const e = this.entries[this.head];
      this.size -= entrySize(e[0], e[1]);
      this.head++;
    }
    // Compact now and then so evicted entries do not pile up.
    if (this.head > 32 && this.head * 2 > this.entries.length) {
      this.entries = this.entries.slice(this.head);
      this.head = 0;
    }
  }
}
