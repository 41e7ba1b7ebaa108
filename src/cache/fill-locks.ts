// Request coalescing across threads: one row per primary key in the shared store's `fills` table says
// who is fetching it from the backend now. A lock expires (a thread that died while filling must not
// block a URL for good); the requests waiting for it wake on CacheSharedState's fill signal.
//
// After a fill finds the response uncacheable the row becomes a pass marker (as Varnish's hit-for-miss):
// for PASS_TTL requests for that key go straight to the backend instead of queueing behind one another
// only to learn, one at a time, that nothing will be stored. They may still store what they get.
import type { DatabaseSync, StatementSync } from 'node:sqlite';

export type LockState = 'acquired' | 'held' | 'pass';

export class FillLocks {
  private readonly q: Record<string, StatementSync>;
  private writesSinceSweep = 0;

  constructor(db: DatabaseSync) {
    const p = (sql: string) => db.prepare(sql);
    this.q = {
      get: p('SELECT owner, expires, pass FROM fills WHERE key = ?'),
      take: p(`INSERT INTO fills (key, owner, expires, pass) VALUES (:key, :owner, :expires, 0)
        ON CONFLICT (key) DO UPDATE SET owner = excluded.owner, expires = excluded.expires, pass = 0 WHERE fills.expires <= :now`),
      release: p('DELETE FROM fills WHERE key = ? AND owner = ? AND pass = 0'),
      pass: p('INSERT OR REPLACE INTO fills (key, owner, expires, pass) VALUES (?, \'\', ?, 1)'),
      clearPass: p('DELETE FROM fills WHERE key = ? AND pass = 1'),
      sweep: p('DELETE FROM fills WHERE expires < ?'),
    };
  }

  /** Tries to become the one request that fetches `key`. Reads first, so waiting requests do not write. */
  tryLock(key: string, owner: string, now: number, ttlMs: number): LockState {
    const row = this.q.get.get(key) as { owner: string; expires: number; pass: number } | undefined;
    if (row !== undefined && row.expires > now) return row.pass === 1 ? 'pass' : 'held';
    const { changes } = this.q.take.run({ key, owner, expires: now + ttlMs, now });
    this.sweepSometimes(now);
    if (Number(changes) === 1) return 'acquired';
    const again = this.q.get.get(key) as { pass: number } | undefined;
    return again?.pass === 1 ? 'pass' : 'held';
  }

  /** True while `key` is locked by someone (or marked pass) at `now`. */
  busy(key: string, now: number): boolean {
    const row = this.q.get.get(key) as { expires: number; pass: number } | undefined;
    return row !== undefined && row.pass === 0 && row.expires > now;
  }

  release(key: string, owner: string): void {
    this.q.release.run(key, owner);
  }

  /** Ends the lock (whoever holds it) and lets requests for `key` bypass coalescing for `ttlMs`. */
  markPass(key: string, now: number, ttlMs: number): void {
    this.q.pass.run(key, now + ttlMs);
    this.sweepSometimes(now);
  }

  /** A response for `key` was stored: it is cacheable again. */
  clearPass(key: string): void {
    this.q.clearPass.run(key);
  }

  // Expired rows (mostly pass markers of dynamic URLs) are swept every 1000 lock writes.
  private sweepSometimes(now: number): void {
    if (++this.writesSinceSweep < 1000) return;
    this.writesSinceSweep = 0;
    this.q.sweep.run(now - 60_000);
  }
}
