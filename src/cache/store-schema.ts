// The on-disk layout of the shared cache: one SQLite database (node:sqlite) in WAL mode, opened by every
// thread that uses the cache (each with its own connection), so every shard sees every entry and every
// fill lock. src/cache/README.md has the measurements behind this choice.
//
//   entries  one row per stored response variant; last_access orders LRU eviction. complete: 0 while its
//            body is being written, 1 visible to lookups, 2 retired (replaced by a newer copy, or no longer
//            storable): invisible, but its body stays readable for responses already sending it, then it goes
//   chunks   the body in CHUNK_SIZE pieces, so a fill writes as bytes arrive and a hit reads as the client drains
//   totals   one row: bytes of visible and retired rows, count of visible ones, kept in the rows' transactions
//   fills    per primary key: who is fetching it now (coalescing), or pass = 1: recently found uncacheable
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { CacheStoreError } from './errors.ts';

/** Body chunk size: one row per 256 KiB (a 30 KiB stylesheet is one row). */
export const CHUNK_SIZE = 256 * 1024;
/** Bytes counted per entry besides its body and header text (row, index and chunk overhead). */
export const ENTRY_OVERHEAD = 256;
/** Bump when the layout changes; an older file is emptied and rebuilt (a cache holds nothing irreplaceable). */
const SCHEMA_VERSION = 1;
/** How long a thread waits for another's write transaction before the operation fails (then it is skipped). */
const BUSY_TIMEOUT_MS = 1000;
/** PRAGMA application_id of a quiclb cache ("qclb"): another SQLite file given as cache.path is never touched. */
const APPLICATION_ID = 0x71636c62;

const DDL = `
  CREATE TABLE IF NOT EXISTS entries (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    key TEXT NOT NULL,
    path TEXT NOT NULL,
    complete INTEGER NOT NULL,
    vary TEXT NOT NULL,
    encoding TEXT NOT NULL,
    status INTEGER NOT NULL,
    headers TEXT NOT NULL,
    etag TEXT,
    last_modified TEXT,
    request_time INTEGER NOT NULL,
    response_time INTEGER NOT NULL,
    initial_age INTEGER NOT NULL,
    lifetime INTEGER NOT NULL,
    swr INTEGER NOT NULL,
    sie INTEGER NOT NULL,
    must_revalidate INTEGER NOT NULL,
    body_size INTEGER NOT NULL,
    size INTEGER NOT NULL,
    last_access INTEGER NOT NULL
  );
  CREATE INDEX IF NOT EXISTS entries_key ON entries(key);
  CREATE INDEX IF NOT EXISTS entries_lru ON entries(last_access) WHERE complete = 1;
  CREATE INDEX IF NOT EXISTS entries_incomplete ON entries(last_access) WHERE complete = 0;
  CREATE INDEX IF NOT EXISTS entries_retired ON entries(last_access) WHERE complete = 2;
  CREATE TABLE IF NOT EXISTS chunks (
    entry INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    data BLOB NOT NULL,
    PRIMARY KEY (entry, seq)
  );
  CREATE TABLE IF NOT EXISTS totals (id INTEGER PRIMARY KEY CHECK (id = 0), bytes INTEGER NOT NULL, entries INTEGER NOT NULL);
  INSERT OR IGNORE INTO totals (id, bytes, entries) VALUES (0, 0, 0);
  CREATE TABLE IF NOT EXISTS fills (key TEXT PRIMARY KEY, owner TEXT NOT NULL, expires INTEGER NOT NULL, pass INTEGER NOT NULL) WITHOUT ROWID;
  CREATE INDEX IF NOT EXISTS fills_expires ON fills(expires);
`;

/**
 * Opens (creating when needed) the store at `path`. `prepare` (once, in the primary, before any shard
 * opens it) also drops what a previous run left behind: incomplete and retired entries, fill locks.
 */
export function openDatabase(path: string, prepare: boolean): DatabaseSync {
  let db: DatabaseSync | undefined;
  try {
    if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true });
    db = new DatabaseSync(path, { timeout: BUSY_TIMEOUT_MS });
    // WAL: readers never wait for the writer, one writer at a time; NORMAL: no fsync per commit (a cache
    // may lose its last writes on power loss, never its consistency).
    // journal_size_limit: the WAL file is cut back to 32 MiB after a checkpoint (a burst of large bodies
    // would otherwise leave it at its largest size for good).
    db.exec('PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA temp_store = MEMORY; PRAGMA journal_size_limit = 33554432;');
    db.exec('BEGIN IMMEDIATE');
    try {
      const { application_id: appId } = db.prepare('PRAGMA application_id').get() as { application_id: number };
      const { n: tables } = db.prepare("SELECT COUNT(*) AS n FROM sqlite_schema WHERE type = 'table'").get() as { n: number };
      if (appId !== APPLICATION_ID && tables > 0) throw new Error('the file is an SQLite database that quiclb did not create');
      const { user_version: version } = db.prepare('PRAGMA user_version').get() as { user_version: number };
      if (version !== SCHEMA_VERSION) {
        db.exec('DROP TABLE IF EXISTS entries; DROP TABLE IF EXISTS chunks; DROP TABLE IF EXISTS totals; DROP TABLE IF EXISTS fills;');
        db.exec(DDL);
        db.exec(`PRAGMA user_version = ${SCHEMA_VERSION}; PRAGMA application_id = ${APPLICATION_ID};`);
      }
      if (prepare) {
        db.exec(`
          DELETE FROM chunks WHERE entry IN (SELECT id FROM entries WHERE complete != 1);
          DELETE FROM entries WHERE complete != 1;
          DELETE FROM fills;
          UPDATE totals SET bytes = (SELECT COALESCE(SUM(size), 0) FROM entries), entries = (SELECT COUNT(*) FROM entries);
        `);
      }
      db.exec('COMMIT');
    } catch (err) {
      db.exec('ROLLBACK');
      throw err;
    }
    return db;
  } catch (err) {
    db?.close();
    throw new CacheStoreError(path, err);
  }
}
