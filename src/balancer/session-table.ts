// Moodle session id -> backend index, shared by every worker thread through one SharedArrayBuffer, so a
// session pinned by one shard is honoured by all others (a QUIC client and its HTTP/1.1 fallback may land
// on different shards). Fixed capacity: memory is allocated once and never grows; when a probe window is
// full its least recently written entry is overwritten, and the eviction is counted.
//
// Layout (Int32 element indexes):
//   header  [0] MAGIC  [1] capacity  [2] write stamp (global, wraps)  [3] evictions  [4] lost writes
//   slot i at HEADER_INTS + i * SLOT_INTS:
//     +0 seq      even = stable, odd = a writer holds the slot (seqlock)
//     +1 keyHi    64-bit hash of the session id; 0/0 = empty
//     +2 keyLo
//     +3 backend  backend index
//     +4 lastSeen seconds since the Unix epoch (uint32, stored in an Int32 cell)
//     +5 stamp    value of the global write stamp at the last write: orders entries within one second
//
// Concurrency: a writer takes a slot by compareExchange(seq, even, even + 1) against the value it saw
// while probing, writes the fields, then publishes with store(seq, even + 2). A writer that loses the race
// (slot busy or changed since it looked) drops its update and counts it: the entry is refreshed on the
// session's next request. A reader reads seq, the fields, then seq again and accepts only an even,
// unchanged seq, so it never sees a half-written slot. Nobody blocks, so no thread can stall another.
import { hash64 } from './hash.ts';

const MAGIC = 0x51534c54; // "QSLT"
const H_MAGIC = 0;
const H_CAPACITY = 1;
const H_STAMP = 2;
const H_EVICTIONS = 3;
const H_LOST = 4;
const HEADER_INTS = 8;

const S_SEQ = 0;
const S_KEY_HI = 1;
const S_KEY_LO = 2;
const S_BACKEND = 3;
const S_SEEN = 4;
const S_STAMP = 5;
const SLOT_INTS = 6;

/** Slots probed from a key's home slot; bounds every operation to a few cache lines. */
export const PROBE_WINDOW = 8;

export class SessionTableError extends Error {
  readonly code: string;
  constructor(code: string, message: string) {
    super(message);
    this.name = 'SessionTableError';
    this.code = code;
  }
}

export interface SessionTableStats {
  capacity: number;
  /** Live entries overwritten because their probe window was full. */
  evictions: number;
  /** Writes dropped because another thread held or had just changed the slot. */
  lostWrites: number;
}

export class SessionTable {
  readonly buffer: SharedArrayBuffer;
  readonly capacity: number;
  private readonly cells: Int32Array;
  private readonly mask: number;
  private readonly now: () => number;

  static bytesFor(capacity: number): number {
    return (HEADER_INTS + capacity * SLOT_INTS) * 4;
  }

  /**
   * Without a buffer, allocates one for `capacity` entries (rounded up to a power of two). With one (from
   * another thread), adopts it and its capacity. `now` returns Unix seconds; tests inject a clock.
   */
  constructor(buffer?: SharedArrayBuffer, capacity = 65536, now: () => number = () => Math.floor(Date.now() / 1000)) {
    this.now = now;
    if (buffer === undefined) {
      if (!Number.isInteger(capacity) || capacity < PROBE_WINDOW || capacity > 1 << 24) {
        throw new SessionTableError('QUICLB_SESSION_TABLE_CAPACITY', `session table capacity must be an integer between ${PROBE_WINDOW} and ${1 << 24}, got ${capacity}`);
      }
      const cap = 2 ** Math.ceil(Math.log2(capacity));
      this.buffer = new SharedArrayBuffer(SessionTable.bytesFor(cap));
      this.cells = new Int32Array(this.buffer);
      Atomics.store(this.cells, H_CAPACITY, cap);
      Atomics.store(this.cells, H_MAGIC, MAGIC);
    } else {
      this.buffer = buffer;
      this.cells = new Int32Array(buffer);
      const cap = this.cells.length >= HEADER_INTS ? Atomics.load(this.cells, H_CAPACITY) : 0;
      if (Atomics.load(this.cells, H_MAGIC) !== MAGIC || buffer.byteLength < SessionTable.bytesFor(cap)) {
        throw new SessionTableError('QUICLB_SESSION_TABLE_BUFFER', 'buffer is not a session table created by new SessionTable()');
      }
    }
    this.capacity = Atomics.load(this.cells, H_CAPACITY);
    this.mask = this.capacity - 1;
  }

  lookup(sessionId: string): number | undefined {
    const [hi, lo] = keyOf(sessionId);
    for (let p = 0; p < PROBE_WINDOW; p++) {
      const base = this.slotBase(lo, p);
      const seq = Atomics.load(this.cells, base + S_SEQ);
      if ((seq & 1) !== 0) continue;
      if (Atomics.load(this.cells, base + S_KEY_HI) !== hi || Atomics.load(this.cells, base + S_KEY_LO) !== lo) continue;
      const backend = Atomics.load(this.cells, base + S_BACKEND);
      if (Atomics.load(this.cells, base + S_SEQ) === seq) return backend;
    }
    return undefined;
  }

  remember(sessionId: string, backendIndex: number): void {
    const [hi, lo] = keyOf(sessionId);
    const seen = this.now() | 0;
    let target = -1;
    let targetSeq = 0;
    let evicting = false;
    let emptyBase = -1;
    let emptySeq = 0;
    let oldestBase = -1;
    let oldestSeq = 0;
    let oldestAge = -1;
    const stampNow = Atomics.load(this.cells, H_STAMP);
    for (let p = 0; p < PROBE_WINDOW; p++) {
      const base = this.slotBase(lo, p);
      const seq = Atomics.load(this.cells, base + S_SEQ);
      if ((seq & 1) !== 0) continue; // another writer is in this slot; leave it alone
      const kHi = Atomics.load(this.cells, base + S_KEY_HI);
      const kLo = Atomics.load(this.cells, base + S_KEY_LO);
      if (kHi === hi && kLo === lo) {
        // Already current: skip the write so a busy session does not turn every request into a store.
        if (Atomics.load(this.cells, base + S_BACKEND) === backendIndex && Atomics.load(this.cells, base + S_SEEN) === seen) return;
        target = base;
        targetSeq = seq;
        break;
      }
      if (kHi === 0 && kLo === 0) {
        if (emptyBase < 0) {
          emptyBase = base;
          emptySeq = seq;
        }
        continue;
      }
      // Age by write stamp, not seconds: many sessions start within one second, and the oldest of them
      // must go first. Unsigned difference keeps the order right across the stamp wrapping.
      const age = (stampNow - Atomics.load(this.cells, base + S_STAMP)) >>> 0;
      if (age > oldestAge) {
        oldestAge = age;
        oldestBase = base;
        oldestSeq = seq;
      }
    }
    if (target < 0 && emptyBase >= 0) {
      target = emptyBase;
      targetSeq = emptySeq;
    } else if (target < 0 && oldestBase >= 0) {
      target = oldestBase;
      targetSeq = oldestSeq;
      evicting = true;
    }
    if (target < 0 || !this.write(target, targetSeq, hi, lo, backendIndex, seen)) {
      Atomics.add(this.cells, H_LOST, 1);
      return;
    }
    if (evicting) Atomics.add(this.cells, H_EVICTIONS, 1);
  }

  forget(sessionId: string): void {
    const [hi, lo] = keyOf(sessionId);
    for (let p = 0; p < PROBE_WINDOW; p++) {
      const base = this.slotBase(lo, p);
      const seq = Atomics.load(this.cells, base + S_SEQ);
      if ((seq & 1) !== 0) continue;
      if (Atomics.load(this.cells, base + S_KEY_HI) !== hi || Atomics.load(this.cells, base + S_KEY_LO) !== lo) continue;
      if (!this.write(base, seq, 0, 0, -1, 0)) Atomics.add(this.cells, H_LOST, 1);
      return;
    }
  }

  /**
   * Forgets every session pinned to backend slot `backendIndex` (the primary calls it when a removed
   * backend's slot is freed, before another backend may take the slot). One pass over the table; a slot
   * another writer holds at that moment is skipped (its write re-pins the session anyway). Returns the
   * number of entries cleared.
   */
  forgetBackend(backendIndex: number): number {
    let cleared = 0;
    for (let i = 0; i < this.capacity; i++) {
      const base = HEADER_INTS + i * SLOT_INTS;
      const seq = Atomics.load(this.cells, base + S_SEQ);
      if ((seq & 1) !== 0) continue;
      if (Atomics.load(this.cells, base + S_BACKEND) !== backendIndex) continue;
      if (Atomics.load(this.cells, base + S_KEY_HI) === 0 && Atomics.load(this.cells, base + S_KEY_LO) === 0) continue;
      if (this.write(base, seq, 0, 0, -1, 0)) cleared++;
    }
    return cleared;
  }

  stats(): SessionTableStats {
    return {
      capacity: this.capacity,
      evictions: Atomics.load(this.cells, H_EVICTIONS) >>> 0,
      lostWrites: Atomics.load(this.cells, H_LOST) >>> 0,
    };
  }

  private slotBase(lo: number, probe: number): number {
    return HEADER_INTS + ((lo + probe) & this.mask) * SLOT_INTS;
  }

  /** Seqlock write; false when another writer got to the slot first. */
  private write(base: number, seq: number, hi: number, lo: number, backend: number, seen: number): boolean {
    if (Atomics.compareExchange(this.cells, base + S_SEQ, seq, seq + 1) !== seq) return false;
    Atomics.store(this.cells, base + S_KEY_HI, hi);
    Atomics.store(this.cells, base + S_KEY_LO, lo);
    Atomics.store(this.cells, base + S_BACKEND, backend);
    Atomics.store(this.cells, base + S_SEEN, seen);
    Atomics.store(this.cells, base + S_STAMP, Atomics.add(this.cells, H_STAMP, 1) + 1);
    Atomics.store(this.cells, base + S_SEQ, seq + 2);
    return true;
  }
}

/** The 64-bit key as two Int32 cells; the all-zero key marks an empty slot, so a real 0/0 hash becomes 0/1. */
function keyOf(sessionId: string): [number, number] {
  const [hi, lo] = hash64(sessionId);
  return hi === 0 && lo === 0 ? [0, 1] : [hi | 0, lo | 0];
}
