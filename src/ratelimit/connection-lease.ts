// One open client connection counted against maxConnectionsPerClient. The count is the pins of the
// client's table slot, so the slot (and the count) stays put while any connection is open. release() is
// idempotent: a connection closed by two paths (an error, then 'close') gives its place back once, so the
// count can neither go negative nor drop below the connections really open. Release on the thread that
// acquired (a lease does not survive postMessage; the shard that owns the socket acquires it).
import type { ClientKey } from './client-key.ts';
import type { ClientTable } from './client-table.ts';

export class ConnectionLease {
  private table: ClientTable | undefined;
  private readonly key: ClientKey | undefined;

  /** Without a table: a lease for a connection that is not counted (limits off, allow-listed, table full). */
  constructor(table?: ClientTable, key?: ClientKey) {
    this.table = table;
    this.key = key;
  }

  /** False for connections that were never counted. */
  get counted(): boolean {
    return this.key !== undefined;
  }

  release(): void {
    const table = this.table;
    if (table === undefined || this.key === undefined) return;
    this.table = undefined;
    const slot = table.lockIfPresent(this.key);
    if (slot < 0) return; // cannot happen while pinned; nothing to give back if it did
    const pins = table.pins(slot);
    if (pins > 0) table.setPins(slot, pins - 1);
    table.unlock(slot);
  }
}

/** The shared lease of every connection that is not counted; release() does nothing. */
export const UNCOUNTED_LEASE = new ConnectionLease();
