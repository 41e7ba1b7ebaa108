// Events per client within a sliding window, shared by all shards: for HTTP/2 and HTTP/3 "rapid reset"
// (CVE-2023-44487), where one client resets streams on many connections at once, possibly on different
// shards, so a per-connection count alone does not see it. A frontend calls record() on every stream the
// client resets before its response finished and refuses the client (HTTP/2 GOAWAY ENHANCE_YOUR_CALM,
// HTTP/3 H3_EXCESSIVE_LOAD, then closing its connections) when the result is over its limit.
//
// Same table design as the rate limiter (client-table.ts: bounded, least recently used recycled, IPv6 by
// /64). The window slides by weighting: the previous fixed window's count times the part of it that still
// overlaps [now - windowMs, now], plus the current one's (a burst at a window boundary is not halved).
import { type ClientKey, clientKeyOf } from './client-key.ts';
import { ClientTable, ClientTableError } from './client-table.ts';

const F_WINDOW = 0; // index of the current fixed window (floor(now / windowMs))
const F_CURRENT = 1;
const F_PREVIOUS = 2;
const FIELDS = 3;

export interface EventWindowOptions {
  /** Milliseconds on a clock every thread shares; default Date.now. */
  now?: () => number;
}

export class ClientEventWindow {
  readonly buffer: SharedArrayBuffer;
  readonly windowMs: number;
  private readonly table: ClientTable;
  private readonly now: () => number;

  /** A new table for `capacity` clients (power of two, 8..2^22). */
  static create(capacity: number, windowMs: number, options: EventWindowOptions = {}): ClientEventWindow {
    return new ClientEventWindow(ClientTable.create(capacity, FIELDS), windowMs, options);
  }

  /** The same counters in another thread; `windowMs` must be the creator's. */
  static attach(buffer: SharedArrayBuffer, windowMs: number, options: EventWindowOptions = {}): ClientEventWindow {
    const table = ClientTable.attach(buffer);
    if (table.fields !== FIELDS) throw new ClientTableError('QUICLB_CLIENT_TABLE_BUFFER', 'buffer is not an event table made by ClientEventWindow.create()');
    return new ClientEventWindow(table, windowMs, options);
  }

  private constructor(table: ClientTable, windowMs: number, options: EventWindowOptions) {
    if (!(windowMs > 0)) throw new ClientTableError('QUICLB_EVENT_WINDOW', `windowMs must be > 0, got ${windowMs}`);
    this.table = table;
    this.buffer = table.buffer;
    this.windowMs = windowMs;
    this.now = options.now ?? Date.now;
  }

  /**
   * Adds `n` events for the client of `address` and returns its events within the last windowMs, these
   * included. 0 for an address that is not an IP, or when the table has no room for it (counted).
   */
  record(address: string, n = 1): number {
    const key = clientKeyOf(address);
    return key === undefined ? 0 : this.recordKey(key, n);
  }

  recordKey(key: ClientKey, n = 1): number {
    const now = this.now();
    const slot = this.table.lock(key, now);
    if (slot < 0) return 0;
    const count = this.advance(slot, now, n);
    this.table.unlock(slot);
    return count;
  }

  /** Events within the last windowMs for the client of `address`, recording nothing. */
  count(address: string): number {
    const key = clientKeyOf(address);
    if (key === undefined) return 0;
    const slot = this.table.lockIfPresent(key);
    if (slot < 0) return 0;
    const count = this.advance(slot, this.now(), 0);
    this.table.unlock(slot);
    return count;
  }

  private advance(slot: number, now: number, n: number): number {
    const v = this.table.values;
    const b = this.table.fieldBase(slot);
    const w = Math.floor(now / this.windowMs);
    const last = v[b + F_WINDOW];
    if (w === last + 1) {
      v[b + F_PREVIOUS] = v[b + F_CURRENT];
      v[b + F_CURRENT] = 0;
    } else if (w > last + 1) {
      v[b + F_PREVIOUS] = 0;
      v[b + F_CURRENT] = 0;
    }
    // w < last: the wall clock went back; keep counting in the window already open.
    if (w > last) v[b + F_WINDOW] = w;
    v[b + F_CURRENT] += n;
    const overlap = 1 - (now - v[b + F_WINDOW] * this.windowMs) / this.windowMs;
    return v[b + F_CURRENT] + Math.floor(v[b + F_PREVIOUS] * Math.min(1, Math.max(0, overlap)));
  }
}
