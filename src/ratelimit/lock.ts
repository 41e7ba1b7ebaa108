// A mutex in one Int32 cell of a SharedArrayBuffer, for critical sections of a few hundred nanoseconds that
// worker threads share. States: 0 free, 1 held, 2 held and someone may be asleep on it (Drepper, "Futexes
// Are Tricky", mutex 2): an uncontended lock and unlock are one compareExchange and one exchange, and a
// thread that finds the cell held spins briefly, then sleeps in Atomics.wait until unlock notifies it.
//
// A shard can be terminated by its supervisor at any instruction, also inside a critical section, and its
// lock would then be held for ever. So nobody waits longer than STALE_LOCK_MS: past it the waiter takes the
// lock anyway and the steal is counted. That stalls one thread once per abandoned lock, so it can be long;
// it must be, since a holder that is merely descheduled is not abandoned (with 2 cores and a load average
// of 12, 20 ms was exceeded in a 300k-request test). Every critical section in this folder only does
// arithmetic on a few cells, so the worst a wrongly stolen lock can do is lose one update of a bucket or count.

// Why a lock rather than lock-free updates: a throwaway benchmark (2026-11-23, 2 cores at load average 14)
// ran a token-bucket take() from 1 and 2 threads, on one slot and on two, with this mutex around two float
// cells and with a lock-free GCRA (one BigInt64 "theoretical arrival time" cell in a compareExchange loop):
// both did 2M to 8M takes/s, with no consistent winner across runs. The mutex stays because one lock also
// covers what one CAS cell cannot: recycling a slot for another key, a login request's two buckets taken
// together, the connection count and the log time.

const SPINS = 64;
/** Longest wait for a lock before it is taken as abandoned. */
export const STALE_LOCK_MS = 500;

/** Acquires the lock at `cells[index]`; returns true when it had to be stolen from an abandoned holder. */
export function lockCell(cells: Int32Array, index: number): boolean {
  let state = Atomics.compareExchange(cells, index, 0, 1);
  if (state === 0) return false;
  for (let i = 0; i < SPINS; i++) {
    if (Atomics.load(cells, index) === 0) {
      state = Atomics.compareExchange(cells, index, 0, 1);
      if (state === 0) return false;
    }
  }
  const deadline = performance.now() + STALE_LOCK_MS;
  if (state !== 2) state = Atomics.exchange(cells, index, 2);
  while (state !== 0) {
    const left = deadline - performance.now();
    if (left <= 0) return true; // the cell stays 2: ours now, and unlock wakes whoever else sleeps on it
    Atomics.wait(cells, index, 2, left);
    state = Atomics.exchange(cells, index, 2);
  }
  return false;
}

export function unlockCell(cells: Int32Array, index: number): void {
  if (Atomics.exchange(cells, index, 0) === 2) Atomics.notify(cells, index, 1);
}
