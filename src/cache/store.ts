// Entries, bodies and the size bound of the shared store (layout in store-schema.ts). Every method is
// synchronous and short: one statement, or one write transaction of a few statements. Callers catch.
import type { DatabaseSync, StatementSync } from 'node:sqlite';
import { ENTRY_OVERHEAD } from './store-schema.ts';

/** What a lookup reads of a complete entry (no body). */
export interface EntryRow {
  id: number;
  vary: string;
  encoding: string;
  status: number;
  headers: string;
  etag: string | null;
  lastModified: string | null;
  requestTime: number;
  responseTime: number;
  initialAge: number;
  lifetime: number;
  swr: number;
  sie: number;
  mustRevalidate: number;
  bodySize: number;
  lastAccess: number;
}

/** The metadata a fill writes before its body. */
export interface NewEntry {
  key: string;
  path: string;
  vary: string;
  encoding: string;
  status: number;
  headers: string;
  etag: string | null;
  lastModified: string | null;
  requestTime: number;
  responseTime: number;
  initialAge: number;
  lifetime: number;
  swr: number;
  sie: number;
  mustRevalidate: number;
}

/** The fields a 304 changes. */
export type Refreshed = Omit<NewEntry, 'key' | 'path' | 'vary' | 'encoding' | 'status'>;

export interface Totals {
  bytes: number;
  entries: number;
}

export interface CommitResult extends Totals {
  /** False when the entry was purged while its body was written: nothing was stored. */
  stored: boolean;
  evicted: number;
}

/** Incomplete entries untouched this long belong to a fill that died with its thread. */
const ORPHAN_AGE_MS = 10 * 60_000;
/**
 * How long a retired entry's body stays readable, so that a client still downloading it when a newer copy
 * replaced it gets the rest (8 MiB at 30 KB/s takes under 5 minutes). A purge deletes at once: the operator
 * asked for it. Under size pressure retired entries go before any visible one.
 */
const RETIRED_GRACE_MS = 5 * 60_000;

const ENTRY_COLUMNS = `id, vary, encoding, status, headers, etag, last_modified AS lastModified, request_time AS requestTime,
  response_time AS responseTime, initial_age AS initialAge, lifetime, swr, sie, must_revalidate AS mustRevalidate,
  body_size AS bodySize, last_access AS lastAccess`;

export class CacheStore {
  readonly db: DatabaseSync;
  private maxSize: number;
  private readonly q: Record<string, StatementSync>;

  /** cache.maxSize changed by a reload: later stores evict down to the new bound. */
  setMaxSize(maxSize: number): void {
    this.maxSize = maxSize;
  }

  constructor(db: DatabaseSync, maxSize: number) {
    this.db = db;
    this.maxSize = maxSize;
    const p = (sql: string) => db.prepare(sql);
    this.q = {
      variants: p(`SELECT ${ENTRY_COLUMNS} FROM entries WHERE key = ? AND complete = 1`),
      chunk: p('SELECT data FROM chunks WHERE entry = ? AND seq = ?'),
      touch: p('UPDATE entries SET last_access = ? WHERE id = ? AND complete = 1'),
      insert: p(`INSERT INTO entries (key, path, complete, vary, encoding, status, headers, etag, last_modified, request_time,
        response_time, initial_age, lifetime, swr, sie, must_revalidate, body_size, size, last_access)
        VALUES (:key, :path, 0, :vary, :encoding, :status, :headers, :etag, :lastModified, :requestTime,
        :responseTime, :initialAge, :lifetime, :swr, :sie, :mustRevalidate, 0, 0, :now)`),
      appendChunk: p('INSERT INTO chunks (entry, seq, data) VALUES (?, ?, ?)'),
      pending: p('SELECT key, vary, encoding, headers, length(key) + length(vary) AS keyBytes FROM entries WHERE id = ? AND complete = 0'),
      sameVariant: p('SELECT id FROM entries WHERE key = ? AND vary = ? AND encoding = ? AND complete = 1 AND id != ?'),
      retire: p('UPDATE entries SET complete = 2, last_access = ? WHERE id = ? AND complete = 1'),
      complete: p('UPDATE entries SET complete = 1, body_size = ?, size = ?, last_access = ? WHERE id = ?'),
      lru: p('SELECT id, size FROM entries WHERE complete = 1 AND id != ? ORDER BY last_access, id LIMIT 32'),
      orphans: p('SELECT id FROM entries WHERE complete = 0 AND last_access < ?'),
      retiredBefore: p('SELECT id, size FROM entries WHERE complete = 2 AND last_access < ? ORDER BY last_access LIMIT 64'),
      deleteEntry: p('DELETE FROM entries WHERE id = ?'),
      deleteChunks: p('DELETE FROM chunks WHERE entry = ?'),
      sizeOf: p('SELECT size, body_size AS bodySize, length(key) + length(vary) AS keyBytes FROM entries WHERE id = ? AND complete = 1'),
      refresh: p(`UPDATE entries SET headers = :headers, etag = :etag, last_modified = :lastModified, request_time = :requestTime,
        response_time = :responseTime, initial_age = :initialAge, lifetime = :lifetime, swr = :swr, sie = :sie,
        must_revalidate = :mustRevalidate, size = :size, last_access = :now WHERE id = :id AND complete = 1`),
      totals: p('SELECT bytes, entries FROM totals WHERE id = 0'),
      addTotals: p('UPDATE totals SET bytes = bytes + ?, entries = entries + ? WHERE id = 0'),
    };
  }

  /** The complete variants stored under a primary key (metadata only). */
  variants(key: string): EntryRow[] {
    return this.q.variants.all(key) as unknown as EntryRow[];
  }

  /** Body chunk `seq`, or undefined when the entry was evicted or purged meanwhile. */
  chunk(id: number, seq: number): Uint8Array | undefined {
    return (this.q.chunk.get(id, seq) as { data: Uint8Array } | undefined)?.data;
  }

  touch(id: number, now: number): void {
    this.q.touch.run(now, id);
  }

  /** Creates an incomplete entry; its body follows with appendChunk(), then commit() or discard(). */
  begin(e: NewEntry, now: number): number {
    return Number(this.q.insert.run({ ...e, now }).lastInsertRowid);
  }

  appendChunk(id: number, seq: number, data: Uint8Array): void {
    this.q.appendChunk.run(id, seq, data);
  }

  /**
   * Makes the entry visible: retires the older copy of the same variant, then evicts (retired entries past
   * their grace first, then the least recently used) until the store fits cache.maxSize, in one transaction.
   */
  commit(id: number, bodySize: number, now: number): CommitResult {
    return this.write(() => {
      const row = this.q.pending.get(id) as { key: string; vary: string; encoding: string; headers: string; keyBytes: number } | undefined;
      if (row === undefined) {
        this.q.deleteChunks.run(id);
        return { stored: false, evicted: 0, ...this.totals() };
      }
      for (const old of this.q.sameVariant.all(row.key, row.vary, row.encoding, id) as Array<{ id: number }>) this.retireRow(old.id, now);
      const size = bodySize + row.headers.length + row.keyBytes + ENTRY_OVERHEAD;
      this.q.complete.run(bodySize, size, now, id);
      this.q.addTotals.run(size, 1);
      for (const o of this.q.orphans.all(now - ORPHAN_AGE_MS) as Array<{ id: number }>) this.discard(o.id);
      for (const r of this.q.retiredBefore.all(now - RETIRED_GRACE_MS) as Array<{ id: number; size: number }>) this.removeRetired(r.id, r.size);
      const evicted = this.evict(id, now);
      return { stored: true, evicted, ...this.totals() };
    });
  }

  /** Drops an incomplete entry and its chunks (a fill that failed or was too large). */
  discard(id: number): void {
    this.q.deleteChunks.run(id);
    this.q.deleteEntry.run(id);
  }

  /** Applies a 304's fields (RFC 9111 §4.3.4); false when the entry is gone. */
  refresh(id: number, r: Refreshed, now: number): boolean {
    return this.write(() => {
      const old = this.q.sizeOf.get(id) as { size: number; bodySize: number; keyBytes: number } | undefined;
      if (old === undefined) return false;
      const size = old.bodySize + r.headers.length + old.keyBytes + ENTRY_OVERHEAD;
      this.q.refresh.run({ ...r, size, now, id });
      this.q.addTotals.run(size - old.size, 0);
      return true;
    });
  }

  /**
   * Hides an entry from lookups (a 304 that made it unstorable, validators that disagreed, a new answer
   * that may not be stored); its body stays readable for responses already sending it.
   */
  retire(id: number): void {
    this.write(() => this.retireRow(id, Date.now()));
  }

  /**
   * Removes entries whose primary key starts with `prefix` ("https://host/path..."), or whose path does
   * when `prefix` starts with "/", or every entry when it is empty. Bodies being written are dropped too,
   * so a fetch that began before the purge cannot store what the purge meant to remove.
   * Returns the number of complete entries removed.
   */
  purge(prefix = ''): number {
    return this.write(() => {
      const column = prefix.startsWith('/') ? 'path' : 'key';
      const where = prefix === '' ? '1' : `substr(${column}, 1, length(:prefix)) = :prefix`;
      const args: Record<string, string> = prefix === '' ? {} : { prefix };
      const { n } = this.db.prepare(`SELECT COUNT(*) AS n FROM entries WHERE complete = 1 AND ${where}`).get(args) as { n: number };
      this.db.prepare(`DELETE FROM chunks WHERE entry IN (SELECT id FROM entries WHERE ${where})`).run(args);
      this.db.prepare(`DELETE FROM entries WHERE ${where}`).run(args);
      this.db.exec('UPDATE totals SET bytes = (SELECT COALESCE(SUM(size), 0) FROM entries WHERE complete != 0), entries = (SELECT COUNT(*) FROM entries WHERE complete = 1)');
      return n;
    });
  }

  totals(): Totals {
    return this.q.totals.get() as unknown as Totals;
  }

  private remove(id: number, size: number): void {
    this.q.deleteChunks.run(id);
    this.q.deleteEntry.run(id);
    this.q.addTotals.run(-size, -1);
  }

  private retireRow(id: number, now: number): void {
    if (Number(this.q.retire.run(now, id).changes) === 1) this.q.addTotals.run(0, -1);
  }

  private removeRetired(id: number, size: number): void {
    this.q.deleteChunks.run(id);
    this.q.deleteEntry.run(id);
    this.q.addTotals.run(-size, 0);
  }

  /**
   * Retired entries first (their bytes still count: the disk holds them), then the least recently used
   * (last_access is refreshed at most once per touch interval: cache.ts). An entry evicted while a client
   * still downloads it ends that download early; LRU makes that the rare case.
   */
  private evict(keep: number, now: number): number {
    for (let t = this.totals(); t.bytes > this.maxSize; t = this.totals()) {
      const retired = this.q.retiredBefore.all(now + 1) as Array<{ id: number; size: number }>;
      if (retired.length === 0) break;
      for (const r of retired) this.removeRetired(r.id, r.size);
    }
    let evicted = 0;
    for (let t = this.totals(); t.bytes > this.maxSize; t = this.totals()) {
      const victims = this.q.lru.all(keep) as Array<{ id: number; size: number }>;
      if (victims.length === 0) break;
      let over = t.bytes - this.maxSize;
      for (const v of victims) {
        if (over <= 0) break;
        this.remove(v.id, v.size);
        over -= v.size;
        evicted++;
      }
    }
    return evicted;
  }

  private write<T>(fn: () => T): T {
    this.db.exec('BEGIN IMMEDIATE');
    try {
      const out = fn();
      this.db.exec('COMMIT');
      return out;
    } catch (err) {
      if (this.db.isTransaction) this.db.exec('ROLLBACK');
      throw err;
    }
  }
}
