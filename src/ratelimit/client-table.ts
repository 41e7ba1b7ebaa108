// A fixed-size table of per-client state shared by every thread through one SharedArrayBuffer: the rate
// limiter's token buckets and connection counts, and the stream-reset counters, each in a table of its own.
// Memory is allocated once and never grows: a key lives in one of PROBE_WINDOW slots after its home slot,
// and when all of them are taken the least recently used unpinned one is recycled (and counted). A slot
// with pins (open connections) is never recycled, so a count is never lost while a connection it counts
// is open; when a whole window is pinned the caller gets -1 and lets the client through (counted as an
// overflow): a full table must not turn into a denial of service for everyone who hashes there.
//
// Concurrency: every slot has a lock cell (lock.ts). The owner of a slot's lock may read and write that
// slot's fields with plain typed-array accesses: the lock's Atomics order them. Keys are also read without
// the lock while probing, then checked again under it. Creating an entry additionally takes the insert
// lock of the key's home slot, so two threads can never create the same key twice (two buckets for one
// client would double its rate); lock order is always insert lock, then one slot lock, so no deadlock.
//
// Layout (byte offsets):
//   header   0  Int32 MAGIC, CAPACITY, FIELDS, -    16 BigInt64 EVICTIONS, OVERFLOWS, STOLEN_LOCKS
//   slot i   HEADER_BYTES + i * stride, stride = 32 + 8 * (1 + fields):
//            Int32   +0 lock  +1 insert lock  +2 kind (0 = empty)  +3 key hi  +4 key lo  +5 pins
//            Float64 +4 last used (ms)  +5.. the caller's fields
import type { ClientKey } from './client-key.ts';
import { lockCell, unlockCell } from './lock.ts';

const MAGIC = 0x51524c54; // "QRLT"
const H_MAGIC = 0;
const H_CAPACITY = 1;
const H_FIELDS = 2;
const C_EVICTIONS = 2; // BigInt64 indexes (byte 16 onwards)
const C_OVERFLOWS = 3;
const C_STOLEN = 4;
const HEADER_BYTES = 64;

const S_LOCK = 0;
const S_INSERT = 1;
const S_KIND = 2;
const S_HI = 3;
const S_LO = 4;
const S_PINS = 5;
const SLOT_INT_BYTES = 32;
const F_LAST_USED = 0;

/** Slots a key may live in, from its home slot: bounds every lookup to a few cache lines. */
export const PROBE_WINDOW = 8;
export const MIN_CAPACITY = PROBE_WINDOW;
export const MAX_CAPACITY = 1 << 22;

export class ClientTableError extends Error {
  readonly code: string;
  constructor(code: string, message: string) {
    super(message);
    this.name = 'ClientTableError';
    this.code = code;
  }
}

export interface ClientTableStats {
  capacity: number;
  /** Entries of other clients recycled because a key's probe window was full. */
  evictions: number;
  /** Operations that found their probe window full of pinned entries and went untracked. */
  overflows: number;
  /** Locks taken over from a holder that kept them past STALE_LOCK_MS (a terminated thread). */
  stolenLocks: number;
}

export class ClientTable {
  readonly buffer: SharedArrayBuffer;
  readonly capacity: number;
  /** Fields per slot the caller owns; read and write them only between lock() and unlock(). */
  readonly fields: number;
  /** The caller's fields: slot s's field f is values[fieldBase(s) + f]. */
  readonly values: Float64Array;
  private readonly ints: Int32Array;
  private readonly counters: BigInt64Array;
  private readonly mask: number;
  private readonly intStride: number;
  private readonly f64Stride: number;
  // The victim chooseVictim() picked, as it saw it (scratch, so the hot path allocates nothing).
  private seenKind = 0;
  private seenHi = 0;
  private seenLo = 0;

  static bytesFor(capacity: number, fields: number): number {
    return HEADER_BYTES + capacity * (SLOT_INT_BYTES + 8 * (1 + fields));
  }

  /** A new table for `capacity` clients (rounded up to a power of two), `fields` float64 values each. */
  static create(capacity: number, fields: number): ClientTable {
    if (!Number.isInteger(capacity) || capacity < MIN_CAPACITY || capacity > MAX_CAPACITY) {
      throw new ClientTableError('QUICLB_CLIENT_TABLE_CAPACITY', `client table capacity must be an integer ${MIN_CAPACITY}..${MAX_CAPACITY}, got ${capacity}`);
    }
    if (!Number.isInteger(fields) || fields < 0 || fields > 32) {
      throw new ClientTableError('QUICLB_CLIENT_TABLE_FIELDS', `client table fields must be an integer 0..32, got ${fields}`);
    }
    const cap = 2 ** Math.ceil(Math.log2(capacity));
    const buffer = new SharedArrayBuffer(ClientTable.bytesFor(cap, fields));
    const ints = new Int32Array(buffer, 0, 4);
    Atomics.store(ints, H_CAPACITY, cap);
    Atomics.store(ints, H_FIELDS, fields);
    Atomics.store(ints, H_MAGIC, MAGIC);
    return new ClientTable(buffer);
  }

  /** The same table in another thread, from the buffer create() allocated. */
  static attach(buffer: SharedArrayBuffer): ClientTable {
    return new ClientTable(buffer);
  }

  private constructor(buffer: SharedArrayBuffer) {
    const head = buffer.byteLength >= HEADER_BYTES ? new Int32Array(buffer, 0, 4) : undefined;
    const capacity = head === undefined ? 0 : Atomics.load(head, H_CAPACITY);
    const fields = head === undefined ? 0 : Atomics.load(head, H_FIELDS);
    if (head === undefined || Atomics.load(head, H_MAGIC) !== MAGIC || buffer.byteLength !== ClientTable.bytesFor(capacity, fields)) {
      throw new ClientTableError('QUICLB_CLIENT_TABLE_BUFFER', 'buffer is not a client table made by ClientTable.create()');
    }
    this.buffer = buffer;
    this.capacity = capacity;
    this.fields = fields;
    this.mask = capacity - 1;
    this.ints = new Int32Array(buffer);
    this.values = new Float64Array(buffer);
    this.counters = new BigInt64Array(buffer, 0, HEADER_BYTES / 8);
    const stride = SLOT_INT_BYTES + 8 * (1 + fields);
    this.intStride = stride / 4;
    this.f64Stride = stride / 8;
  }

  /**
   * Finds `key`'s slot, creating it (fields zeroed) when absent, and returns it locked; the caller must
   * unlock() it. -1 when the key's probe window is full of pinned slots (nothing locked, counted).
   * `now` (ms) marks the slot used, which is what recycling orders by.
   */
  lock(key: ClientKey, now: number): number {
    const home = this.home(key);
    const found = this.lockExisting(key, home);
    if (found >= 0) {
      this.values[this.fieldBase(found) - 1 + F_LAST_USED] = now;
      return found;
    }
    const insertCell = this.intBase(home) + S_INSERT;
    this.lockCell(insertCell);
    // Someone may have created it while we waited for the insert lock.
    let slot = this.lockExisting(key, home);
    for (let attempt = 0; slot < 0 && attempt < PROBE_WINDOW; attempt++) {
      const victim = this.chooseVictim(home);
      if (victim < 0) break;
      this.lockSlot(victim);
      const b = this.intBase(victim);
      // Unchanged since chooseVictim looked, and still unpinned: it is ours to overwrite.
      if (this.ints[b + S_KIND] === this.seenKind && this.ints[b + S_HI] === this.seenHi && this.ints[b + S_LO] === this.seenLo && this.ints[b + S_PINS] === 0) {
        if (this.seenKind !== 0) Atomics.add(this.counters, C_EVICTIONS, 1n);
        Atomics.store(this.ints, b + S_HI, key.hi);
        Atomics.store(this.ints, b + S_LO, key.lo);
        Atomics.store(this.ints, b + S_KIND, key.kind);
        this.values.fill(0, this.fieldBase(victim), this.fieldBase(victim) + this.fields);
        slot = victim;
      } else {
        this.unlockSlot(victim);
      }
    }
    unlockCell(this.ints, insertCell);
    if (slot < 0) {
      Atomics.add(this.counters, C_OVERFLOWS, 1n);
      return -1;
    }
    this.values[this.fieldBase(slot) - 1 + F_LAST_USED] = now;
    return slot;
  }

  /** `key`'s slot, locked, or -1 when the table does not hold it (nothing is created). */
  lockIfPresent(key: ClientKey): number {
    return this.lockExisting(key, this.home(key));
  }

  unlock(slot: number): void {
    unlockCell(this.ints, this.intBase(slot) + S_LOCK);
  }

  /** Index in `values` of the slot's first field. */
  fieldBase(slot: number): number {
    return HEADER_BYTES / 8 + slot * this.f64Stride + SLOT_INT_BYTES / 8 + 1;
  }

  /** Open connections (or other holds) on a locked slot; a pinned slot is never recycled. */
  pins(slot: number): number {
    return this.ints[this.intBase(slot) + S_PINS];
  }

  setPins(slot: number, pins: number): void {
    Atomics.store(this.ints, this.intBase(slot) + S_PINS, pins);
  }

  stats(): ClientTableStats {
    return {
      capacity: this.capacity,
      evictions: Number(Atomics.load(this.counters, C_EVICTIONS)),
      overflows: Number(Atomics.load(this.counters, C_OVERFLOWS)),
      stolenLocks: Number(Atomics.load(this.counters, C_STOLEN)),
    };
  }

  private lockExisting(key: ClientKey, home: number): number {
    for (let p = 0; p < PROBE_WINDOW; p++) {
      const slot = (home + p) & this.mask;
      if (!this.holds(slot, key)) continue;
      this.lockSlot(slot);
      if (this.holds(slot, key)) return slot;
      this.unlockSlot(slot); // recycled between the look and the lock: it went to another client
      return -1;
    }
    return -1;
  }

  /** The first empty slot of the window, else its least recently used unpinned one; -1 if all are pinned. */
  private chooseVictim(home: number): number {
    let best = -1;
    let bestUsed = Infinity;
    for (let p = 0; p < PROBE_WINDOW; p++) {
      const slot = (home + p) & this.mask;
      const b = this.intBase(slot);
      const kind = Atomics.load(this.ints, b + S_KIND);
      if (kind === 0) {
        best = slot;
        break;
      }
      if (Atomics.load(this.ints, b + S_PINS) !== 0) continue;
      // Read without the slot's lock: a stale or torn value only makes a worse choice, never a wrong one.
      const used = this.values[this.fieldBase(slot) - 1 + F_LAST_USED];
      if (used < bestUsed) {
        bestUsed = used;
        best = slot;
      }
    }
    if (best >= 0) {
      const b = this.intBase(best);
      this.seenKind = Atomics.load(this.ints, b + S_KIND);
      this.seenHi = Atomics.load(this.ints, b + S_HI);
      this.seenLo = Atomics.load(this.ints, b + S_LO);
    }
    return best;
  }

  private holds(slot: number, key: ClientKey): boolean {
    const b = this.intBase(slot);
    return Atomics.load(this.ints, b + S_KIND) === key.kind && Atomics.load(this.ints, b + S_HI) === key.hi && Atomics.load(this.ints, b + S_LO) === key.lo;
  }

  private home(key: ClientKey): number {
    return mix32(mix32(key.hi ^ Math.imul(key.kind, 0x9e3779b9)) ^ key.lo) & this.mask;
  }

  private intBase(slot: number): number {
    return HEADER_BYTES / 4 + slot * this.intStride;
  }

  private lockSlot(slot: number): void {
    this.lockCell(this.intBase(slot) + S_LOCK);
  }

  private unlockSlot(slot: number): void {
    unlockCell(this.ints, this.intBase(slot) + S_LOCK);
  }

  private lockCell(index: number): void {
    if (lockCell(this.ints, index)) Atomics.add(this.counters, C_STOLEN, 1n);
  }
}

/** murmur3's fmix32: spreads neighbouring addresses (10.0.0.1, 10.0.0.2) over the table. */
function mix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}
