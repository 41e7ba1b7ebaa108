// Per-client request rate limits and connection limits, shared by every shard (config.rateLimit).
//
// Who calls what (nothing here answers a client; the caller does):
//   - The primary calls RateLimiter.create(config) once and hands `limiter.shared` to every shard (workerData
//     or postMessage); each shard calls RateLimiter.attach(shared, config). All of them see one table.
//   - The request pipeline, early (before routing and proxying), for every request except the admin endpoints
//     and health checks (the caller skips those: an operator must be able to look at a flooded quiclb):
//       const client = resolveClientAddress(req.remoteAddress, forwardedForOf(req.headers), trustedProxies)
//       const verdict = limiter.checkRequest(client, req.method, req.path)
//     and on `ok: false` answers 429 Too Many Requests (RFC 6585 §4) with `Retry-After: retryAfterSeconds`,
//     logging only when `verdict.log` is true.
//   - A shard, when it takes a TCP connection or accepts a QUIC connection (its socket peer address, never
//     X-Forwarded-For): `const v = limiter.acquireConnection(peerAddress)`; on `ok: false` it closes the
//     connection at once, else it calls `v.lease.release()` when the connection closes (any path, any number
//     of times).
// Refusals are counted by reason in shared counters (stats()).
import type { Config, RateLimitConfig } from '../config/types.ts';
import { CidrList, parseIp } from '../shared/cidr.ts';
import { type ClientKey, clientKeyOfIp, formatClientKey } from './client-key.ts';
import { ClientTable, ClientTableError, MIN_CAPACITY, type ClientTableStats } from './client-table.ts';
import { ConnectionLease, UNCOUNTED_LEASE } from './connection-lease.ts';
import { LIMIT_REASONS, LimitCounters, type LimitReason } from './counters.ts';
import { LoginPaths } from './login-paths.ts';
import { type BucketRate, bucketRate, consume, retryAfterSeconds, waitMs } from './token-bucket.ts';

// The limiter's fields in each client-table slot.
const F_GENERAL = 0; // general bucket: spent, last update (2 cells)
const F_LOGIN = 2; // login bucket: spent, last update (2 cells)
const F_LOGGED_AT = 4; // when this client was last logged as limited
const FIELDS = 5;

/** What the primary hands to the shards; plain SharedArrayBuffers, so it survives postMessage. */
export interface RateLimiterShared {
  table: SharedArrayBuffer;
  counters: SharedArrayBuffer;
}

export interface RateLimiterOptions {
  /**
   * Milliseconds on a clock every thread shares (default Date.now; performance.now() has a per-thread
   * origin). Tests inject one.
   */
  now?: () => number;
}

export type RequestVerdict =
  | { readonly ok: true }
  | {
      readonly ok: false;
      readonly reason: 'general' | 'login';
      /** For `Retry-After`: whole seconds until the bucket that refused has a token again (>= 1). */
      readonly retryAfterSeconds: number;
      /** The client as limited ("203.0.113.7", "2001:db8:1:2::/64"), for the log line. */
      readonly client: string;
      /** True at most once per client per rateLimit.logInterval, across all shards. */
      readonly log: boolean;
    };

export type ConnectionVerdict =
  | { readonly ok: true; readonly lease: ConnectionLease }
  | { readonly ok: false; readonly reason: 'connections'; readonly limit: number; readonly client: string; readonly log: boolean };

export interface RateLimitStats {
  /** Requests (general, login) and connections (connections) refused, all shards together. */
  limited: Record<LimitReason, number>;
  table: ClientTableStats;
}

const ALLOWED: RequestVerdict = Object.freeze({ ok: true });
const UNCOUNTED: ConnectionVerdict = Object.freeze({ ok: true, lease: UNCOUNTED_LEASE });

export class RateLimiter {
  readonly enabled: boolean;
  readonly shared: RateLimiterShared;
  private readonly table: ClientTable;
  private readonly counters: LimitCounters;
  private readonly general: BucketRate;
  private readonly login: BucketRate;
  private readonly loginPaths: LoginPaths;
  private readonly maxConnections: number;
  private readonly allowList: CidrList;
  private readonly trustedProxies: CidrList;
  private readonly logIntervalMs: number;
  private readonly now: () => number;

  /** In the primary, once: allocates the shared table (a token table when rateLimit is off). */
  static create(config: Config, options: RateLimiterOptions = {}): RateLimiter {
    const rl = config.rateLimit;
    const table = ClientTable.create(rl.enabled ? rl.maxClients : MIN_CAPACITY, FIELDS);
    return new RateLimiter(config, table, new LimitCounters(), options);
  }

  /** In a shard: the primary's limiter, from `limiter.shared`. */
  static attach(shared: RateLimiterShared, config: Config, options: RateLimiterOptions = {}): RateLimiter {
    const table = ClientTable.attach(shared.table);
    if (table.fields !== FIELDS) throw new ClientTableError('QUICLB_CLIENT_TABLE_BUFFER', 'buffer is not a rate-limit table made by RateLimiter.create()');
    return new RateLimiter(config, table, new LimitCounters(shared.counters), options);
  }

  private constructor(config: Config, table: ClientTable, counters: LimitCounters, options: RateLimiterOptions) {
    const rl: RateLimitConfig = config.rateLimit;
    this.enabled = rl.enabled;
    this.table = table;
    this.counters = counters;
    this.shared = { table: table.buffer, counters: counters.buffer };
    this.general = bucketRate(rl.requestsPerSecond, rl.burst);
    this.login = bucketRate(rl.login.requestsPerSecond, rl.login.burst);
    this.loginPaths = new LoginPaths(rl.login.paths);
    this.maxConnections = rl.maxConnectionsPerClient;
    this.allowList = new CidrList(rl.allowList);
    this.trustedProxies = new CidrList(config.server.trustedProxies);
    this.logIntervalMs = rl.logIntervalMs;
    this.now = options.now ?? Date.now;
  }

  /**
   * One request from `clientAddress` (already resolved through trusted proxies). A login request (method and
   * path in rateLimit.login.paths) needs a token from both buckets and takes both or neither. Allow-listed
   * clients, addresses that are not IPs and a full table are let through.
   */
  checkRequest(clientAddress: string, method: string, path: string): RequestVerdict {
    if (!this.enabled) return ALLOWED;
    const key = this.keyOf(clientAddress, false);
    if (key === undefined) return ALLOWED;
    const isLogin = this.loginPaths.matches(method, path);
    const now = this.now();
    const slot = this.table.lock(key, now);
    if (slot < 0) return ALLOWED;
    const v = this.table.values;
    const b = this.table.fieldBase(slot);
    let reason: 'general' | 'login' = 'login';
    let wait = isLogin ? waitMs(v, b + F_LOGIN, now, this.login) : 0;
    if (wait === 0) {
      reason = 'general';
      wait = waitMs(v, b + F_GENERAL, now, this.general);
    }
    if (wait === 0) {
      consume(v, b + F_GENERAL);
      if (isLogin) consume(v, b + F_LOGIN);
      this.table.unlock(slot);
      return ALLOWED;
    }
    const log = this.logDue(v, b + F_LOGGED_AT, now);
    this.table.unlock(slot);
    this.counters.count(reason);
    return { ok: false, reason, retryAfterSeconds: retryAfterSeconds(wait), client: formatClientKey(key), log };
  }

  /**
   * A new TCP or QUIC connection from `peerAddress` (the socket's peer, never a header). Connections from
   * trusted proxies are not counted: one CDN node carries many clients.
   */
  acquireConnection(peerAddress: string): ConnectionVerdict {
    if (!this.enabled || this.maxConnections === 0) return UNCOUNTED;
    const key = this.keyOf(peerAddress, true);
    if (key === undefined) return UNCOUNTED;
    const now = this.now();
    const slot = this.table.lock(key, now);
    if (slot < 0) return UNCOUNTED;
    const pins = this.table.pins(slot);
    if (pins < this.maxConnections) {
      this.table.setPins(slot, pins + 1);
      this.table.unlock(slot);
      return { ok: true, lease: new ConnectionLease(this.table, key) };
    }
    const log = this.logDue(this.table.values, this.table.fieldBase(slot) + F_LOGGED_AT, now);
    this.table.unlock(slot);
    this.counters.count('connections');
    return { ok: false, reason: 'connections', limit: this.maxConnections, client: formatClientKey(key), log };
  }

  /** Connections counted for the client of `address` now (for /stats and tests). */
  openConnections(address: string): number {
    const ip = parseIp(address);
    if (ip === undefined) return 0;
    const slot = this.table.lockIfPresent(clientKeyOfIp(ip));
    if (slot < 0) return 0;
    const pins = this.table.pins(slot);
    this.table.unlock(slot);
    return pins;
  }

  stats(): RateLimitStats {
    const limited = {} as Record<LimitReason, number>;
    for (const r of LIMIT_REASONS) limited[r] = this.counters.read(r);
    return { limited, table: this.table.stats() };
  }

  /** The table key, or undefined for a client that is never limited. */
  private keyOf(address: string, exemptProxies: boolean): ClientKey | undefined {
    const ip = parseIp(address);
    if (ip === undefined || this.allowList.contains(ip)) return undefined;
    if (exemptProxies && this.trustedProxies.contains(ip)) return undefined;
    return clientKeyOfIp(ip);
  }

  /** Whether to log a refusal now: at most once per client per logInterval (slot locked by the caller). */
  private logDue(v: Float64Array, i: number, now: number): boolean {
    const last = v[i];
    if (last !== 0 && now >= last && now - last < this.logIntervalMs) return false;
    v[i] = now;
    return true;
  }
}
