// The one owner of quiclb's cross-thread state. The primary allocates one SharedArrayBuffer at start and
// hands it to every shard; all reads and writes go through the functions below, with Atomics, so no
// message round-trip sits on the hot path. Layout (all offsets are element indexes, not bytes):
//
//   gauges  Int32Array     [backend gauges][shard gauges]
//   counters BigInt64Array [backend counters][global counters][shard counters][compression counters]
//                           [WebSocket counters per shard]
//   secret   Uint8Array     32 random bytes drawn by the primary, the same for every shard (it signs the
//                           dashboard's session cookies, so a session made on one shard holds on all)
//   slots    Int32Array     [MAX_BACKENDS] who may use each backend slot (SLOT_FREE / SLOT_LIVE / SLOT_RETIRING)
//
// A backend's slot is stable by its id across configuration reloads: the primary assigns slots
// (src/primary/backend-slots.ts) and every thread indexes backends by slot (Backend.index), so a backend
// keeps its counters and health state while a reload adds or removes others.
//
// New regions go at the end, so the offsets of the older ones never move.

import { randomFillSync } from 'node:crypto';

export const MAX_BACKENDS = 256;
export const MAX_SHARDS = 256;

// Per-backend gauges (Int32).
export const B_ACTIVE = 0; // requests in flight to this backend, all shards together
export const B_HEALTHY = 1; // 1 healthy, 0 down
export const B_PASSIVE_FAILS = 2; // consecutive passive failures (connection errors, 5xx)
export const B_ENABLED = 3; // 1 in rotation, 0 drained by an operator (not a failure)
const B_GAUGES = 4;

// Per-backend counters (BigInt64).
export const BC_REQUESTS = 0;
export const BC_ERRORS = 1; // connection errors, timeouts, 5xx
export const BC_FAILOVERS = 2; // requests retried away from this backend
export const BC_HEALTH_TRANSITIONS = 3;
const B_COUNTERS = 4;

// Global counters (BigInt64).
export const G_REQ_HTTP1 = 0;
export const G_REQ_HTTP2 = 1;
export const G_REQ_HTTP3 = 2;
export const G_NO_BACKEND = 3; // 503 all backends down
export const G_QUIC_HANDSHAKES = 4;
export const G_QUIC_MIGRATIONS = 5; // peer address changed on an established connection (active migration)
export const G_QUIC_NAT_REBINDINGS = 6; // peer port changed, same IP
export const G_QUIC_RETRIES = 7; // Retry packets sent by the primary
export const G_DROP_SHORT_UNKNOWN_CID = 8;
export const G_DROP_BAD_HEADER = 9;
export const G_DROP_INITIAL_TOO_SHORT = 10;
export const G_DROP_QUEUE_FULL = 11;
export const G_DROP_BAD_TOKEN = 12;
export const G_VERSION_NEGOTIATIONS = 13;
export const G_SHARD_RESTARTS = 14;
export const G_TCP_CONNECTIONS = 15;
export const G_QUIC_CONNECTIONS = 16;
export const G_DROP_SHARD_ERROR = 17; // datagrams the shard's quiche rejected
export const G_QUIC_OLD_PATH_PROBES = 18; // packets quiche sent for a path the client left (QuicEndpoint.drainOldPaths)
export const G_UNCAUGHT_ERRORS = 23; // exceptions no per-request/per-connection boundary caught (a bug; the shard keeps running)
export const G_QUIC_STATELESS_RESETS = 19; // stateless resets sent (RFC 9000 §10.3), by the primary or a shard
export const G_QUIC_RESETS_RATE_LIMITED = 20; // stateless resets not sent: over the rate limit
const G_COUNTERS = 24;

export const GLOBAL_COUNTER_NAMES: Record<number, string> = {
  [G_REQ_HTTP1]: 'requests_http1',
  [G_REQ_HTTP2]: 'requests_http2',
  [G_REQ_HTTP3]: 'requests_http3',
  [G_NO_BACKEND]: 'no_backend',
  [G_QUIC_HANDSHAKES]: 'quic_handshakes',
  [G_QUIC_MIGRATIONS]: 'quic_migrations',
  [G_QUIC_NAT_REBINDINGS]: 'quic_nat_rebindings',
  [G_QUIC_RETRIES]: 'quic_retries',
  [G_DROP_SHORT_UNKNOWN_CID]: 'quic_dropped_unknown_cid',
  [G_DROP_BAD_HEADER]: 'quic_dropped_bad_header',
  [G_DROP_INITIAL_TOO_SHORT]: 'quic_dropped_initial_too_short',
  [G_DROP_QUEUE_FULL]: 'quic_dropped_queue_full',
  [G_DROP_BAD_TOKEN]: 'quic_dropped_bad_token',
  [G_VERSION_NEGOTIATIONS]: 'quic_version_negotiations',
  [G_SHARD_RESTARTS]: 'shard_restarts',
  [G_TCP_CONNECTIONS]: 'tcp_connections',
  [G_QUIC_CONNECTIONS]: 'quic_connections',
  [G_DROP_SHARD_ERROR]: 'quic_dropped_shard_error',
  [G_QUIC_OLD_PATH_PROBES]: 'quic_old_path_probes',
  [G_UNCAUGHT_ERRORS]: 'uncaught_errors',
  [G_QUIC_STATELESS_RESETS]: 'quic_stateless_resets',
  [G_QUIC_RESETS_RATE_LIMITED]: 'quic_stateless_resets_rate_limited',
};

// Per-shard gauges (Int32) and counters (BigInt64).
export const S_CONNECTIONS = 0; // open client connections (TCP + QUIC)
export const S_QUIC_CONNECTIONS = 1;
export const S_ALIVE = 2;
const S_GAUGES = 4;
export const SC_REQUESTS = 0;
export const SC_CONNECTIONS_TOTAL = 1;
const S_COUNTERS = 2;

// Compression counters (BigInt64), one row per content coding (src/compress), in this order.
export const COMPRESSION_CODINGS = ['br', 'zstd', 'gzip'] as const;
export type CompressionCoding = (typeof COMPRESSION_CODINGS)[number];
export const CC_RESPONSES = 0; // responses whose body went through the encoder
export const CC_BYTES_IN = 1; // body bytes before compression
export const CC_BYTES_OUT = 2; // body bytes after compression
const C_COUNTERS = 4;

// WebSocket counters per shard (BigInt64; src/proxy/websocket.ts).
export const WS_OPEN = 0; // tunnels open now (a gauge kept in a counter slot: +1 at the 101, -1 at close)
export const WS_OPENED = 1; // tunnels opened since start
const WS_COUNTERS = 2;

const GAUGE_LEN = MAX_BACKENDS * B_GAUGES + MAX_SHARDS * S_GAUGES;
const SHARD_COUNTERS_AT = MAX_BACKENDS * B_COUNTERS + G_COUNTERS;
const COMPRESSION_COUNTERS_AT = SHARD_COUNTERS_AT + MAX_SHARDS * S_COUNTERS;
const WEBSOCKET_COUNTERS_AT = COMPRESSION_COUNTERS_AT + COMPRESSION_CODINGS.length * C_COUNTERS;
const COUNTER_LEN = WEBSOCKET_COUNTERS_AT + MAX_SHARDS * WS_COUNTERS;
const GAUGE_BYTES = GAUGE_LEN * 4;
const COUNTER_OFFSET_BYTES = Math.ceil(GAUGE_BYTES / 8) * 8;
const SECRET_OFFSET_BYTES = COUNTER_OFFSET_BYTES + COUNTER_LEN * 8;
const SECRET_BYTES = 32;
const SLOTS_OFFSET_BYTES = SECRET_OFFSET_BYTES + SECRET_BYTES;
const TOTAL_BYTES = SLOTS_OFFSET_BYTES + MAX_BACKENDS * 4;

// Backend slot states. Only the primary writes them; a strategy uses a backend only in a LIVE slot.
export const SLOT_FREE = 0;
export const SLOT_LIVE = 1;
/** Removed by a reload: no new request may pick it; the slot is freed once its in-flight requests ended. */
export const SLOT_RETIRING = 2;

/**
 * The slot of loadBalancer.backendServers[i]: `slots[i]` from the primary's assignment
 * (src/primary/backend-slots.ts), or i itself where no slot map is given (tests, tools).
 */
export function slotAt(slots: readonly number[] | undefined, i: number): number {
  return slots === undefined ? i : slots[i];
}

/** One past the highest slot in use: the width of per-slot arrays (latency histograms). */
export function slotSpan(slots: readonly number[] | undefined, count: number): number {
  if (slots === undefined) return count;
  let max = -1;
  for (const s of slots) if (s > max) max = s;
  return max + 1;
}

export class SharedState {
  readonly buffer: SharedArrayBuffer;
  private readonly gauges: Int32Array;
  private readonly counters: BigInt64Array;
  private readonly slots: Int32Array;

  constructor(buffer?: SharedArrayBuffer) {
    this.buffer = buffer ?? new SharedArrayBuffer(TOTAL_BYTES);
    this.gauges = new Int32Array(this.buffer, 0, GAUGE_LEN);
    this.counters = new BigInt64Array(this.buffer, COUNTER_OFFSET_BYTES, COUNTER_LEN);
    this.slots = new Int32Array(this.buffer, SLOTS_OFFSET_BYTES, MAX_BACKENDS);
    // Written once, before the buffer is handed to any shard; only read afterwards.
    if (buffer === undefined) randomFillSync(new Uint8Array(this.buffer, SECRET_OFFSET_BYTES, SECRET_BYTES));
  }

  /**
   * Called by the primary when a backend takes a slot (at start, or added by a reload): every gauge and
   * counter of the slot starts from zero, then the slot goes live.
   */
  initBackend(index: number, healthy: boolean): void {
    for (let f = 0; f < B_GAUGES; f++) Atomics.store(this.gauges, index * B_GAUGES + f, 0);
    for (let f = 0; f < B_COUNTERS; f++) Atomics.store(this.counters, index * B_COUNTERS + f, 0n);
    Atomics.store(this.gauges, index * B_GAUGES + B_HEALTHY, healthy ? 1 : 0);
    Atomics.store(this.gauges, index * B_GAUGES + B_ENABLED, 1);
    Atomics.store(this.slots, index, SLOT_LIVE);
  }

  slotState(index: number): number {
    return Atomics.load(this.slots, index);
  }

  /** Primary only (src/primary/backend-slots.ts). */
  setSlotState(index: number, value: number): void {
    Atomics.store(this.slots, index, value);
  }

  backendGauge(index: number, field: number): number {
    return Atomics.load(this.gauges, index * B_GAUGES + field);
  }

  addBackendGauge(index: number, field: number, delta: number): number {
    return Atomics.add(this.gauges, index * B_GAUGES + field, delta) + delta;
  }

  setBackendGauge(index: number, field: number, value: number): number {
    return Atomics.exchange(this.gauges, index * B_GAUGES + field, value);
  }

  /** Compare-and-set; returns true when this caller made the change (one logger per transition). */
  casBackendGauge(index: number, field: number, expected: number, value: number): boolean {
    return Atomics.compareExchange(this.gauges, index * B_GAUGES + field, expected, value) === expected;
  }

  isBackendAvailable(index: number): boolean {
    return this.backendGauge(index, B_HEALTHY) === 1 && this.backendGauge(index, B_ENABLED) === 1 && Atomics.load(this.slots, index) === SLOT_LIVE;
  }

  activeConnections(index: number): number {
    return this.backendGauge(index, B_ACTIVE);
  }

  backendCounter(index: number, field: number): bigint {
    return Atomics.load(this.counters, index * B_COUNTERS + field);
  }

  addBackendCounter(index: number, field: number, delta = 1n): void {
    Atomics.add(this.counters, index * B_COUNTERS + field, delta);
  }

  globalCounter(field: number): bigint {
    return Atomics.load(this.counters, MAX_BACKENDS * B_COUNTERS + field);
  }

  addGlobal(field: number, delta = 1n): void {
    Atomics.add(this.counters, MAX_BACKENDS * B_COUNTERS + field, delta);
  }

  shardGauge(shard: number, field: number): number {
    return Atomics.load(this.gauges, MAX_BACKENDS * B_GAUGES + shard * S_GAUGES + field);
  }

  addShardGauge(shard: number, field: number, delta: number): void {
    Atomics.add(this.gauges, MAX_BACKENDS * B_GAUGES + shard * S_GAUGES + field, delta);
  }

  setShardGauge(shard: number, field: number, value: number): void {
    Atomics.store(this.gauges, MAX_BACKENDS * B_GAUGES + shard * S_GAUGES + field, value);
  }

  shardCounter(shard: number, field: number): bigint {
    return Atomics.load(this.counters, SHARD_COUNTERS_AT + shard * S_COUNTERS + field);
  }

  addShardCounter(shard: number, field: number, delta = 1n): void {
    Atomics.add(this.counters, SHARD_COUNTERS_AT + shard * S_COUNTERS + field, delta);
  }

  /** A copy of the per-process secret (for keys derived from it, never sent anywhere). */
  secret(): Buffer {
    return Buffer.from(new Uint8Array(this.buffer, SECRET_OFFSET_BYTES, SECRET_BYTES));
  }

  compressionCounter(coding: CompressionCoding, field: number): bigint {
    return Atomics.load(this.counters, COMPRESSION_COUNTERS_AT + COMPRESSION_CODINGS.indexOf(coding) * C_COUNTERS + field);
  }

  addCompressionCounter(coding: CompressionCoding, field: number, delta = 1n): void {
    Atomics.add(this.counters, COMPRESSION_COUNTERS_AT + COMPRESSION_CODINGS.indexOf(coding) * C_COUNTERS + field, delta);
  }

  webSocketCounter(shard: number, field: number): bigint {
    return Atomics.load(this.counters, WEBSOCKET_COUNTERS_AT + shard * WS_COUNTERS + field);
  }

  addWebSocketCounter(shard: number, field: number, delta = 1n): void {
    Atomics.add(this.counters, WEBSOCKET_COUNTERS_AT + shard * WS_COUNTERS + field, delta);
  }

  setWebSocketCounter(shard: number, field: number, value: bigint): void {
    Atomics.store(this.counters, WEBSOCKET_COUNTERS_AT + shard * WS_COUNTERS + field, value);
  }
}
