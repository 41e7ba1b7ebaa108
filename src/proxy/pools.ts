// The undici connection pools to the backends, one per backend and shard, kept across configuration reloads.
// Each generation of a shard's request path (src/shard/runtime.ts) leases the pools of its backends; a
// backend whose id, address and pool settings did not change keeps its pool, and with it its idle
// keep-alive connections. A pool nobody leases any more (its backend was removed or moved, or the pool
// settings changed) is closed, gracefully: undici's close() lets the requests it still carries finish.
// The previous generation gives its lease back only once its last request ended (Pipeline.drain()). A pool is
// created on its first request (a FastCGI backend on a unix socket never gets one), its lease counted from the
// start, so an idle backend's pool still survives a reload.
import { Pool } from 'undici';
import type { Dispatcher } from 'undici';
import type { Config } from '../config/types.ts';
import type { Backend } from '../balancer/backend.ts';
import { interimFilteringConnector } from './interim-filter.ts';

/** Where a Forwarder gets the dispatcher of a backend. */
export interface BackendDispatchers {
  dispatcher(backend: Backend): Dispatcher;
}

/** The settings a pool is built with; a pool is reused only when all of them are unchanged. */
interface PoolSpec {
  host: string;
  port: number;
  connections: number;
  connectTimeoutMs: number;
  headersTimeoutMs: number;
  bodyTimeoutMs: number;
}

function specOf(backend: Backend, config: Config): PoolSpec {
  const lb = config.loadBalancer;
  return {
    host: backend.host,
    port: backend.port,
    connections: backend.maxConnections > 0 ? backend.maxConnections : 256,
    connectTimeoutMs: lb.connectTimeoutMs,
    headersTimeoutMs: lb.backendTimeoutMs,
    bodyTimeoutMs: Math.max(lb.backendTimeoutMs, config.server.readTimeoutMs),
  };
}

function keyOf(backend: Backend, spec: PoolSpec): string {
  return `${backend.id}\0${spec.host}\0${spec.port}\0${spec.connections}\0${spec.connectTimeoutMs}\0${spec.headersTimeoutMs}\0${spec.bodyTimeoutMs}`;
}

/** A new undici Pool for `backend` with quiclb's settings from `config`. */
export function createBackendPool(backend: Backend, config: Config): Pool {
  return poolFor(specOf(backend, config));
}

function poolFor(spec: PoolSpec): Pool {
  return new Pool(`http://${spec.host.includes(':') ? `[${spec.host}]` : spec.host}:${spec.port}`, {
    connections: spec.connections,
    pipelining: 1,
    keepAliveTimeout: 30_000,
    connect: interimFilteringConnector({ timeout: spec.connectTimeoutMs }),
    headersTimeout: spec.headersTimeoutMs,
    bodyTimeout: spec.bodyTimeoutMs,
  });
}

interface Entry {
  spec: PoolSpec;
  /** Made on the first request. */
  pool: Pool | undefined;
  leases: number;
}

/** One generation's view: the pools of its backends, by slot. */
export class PoolLease implements BackendDispatchers {
  private readonly bySlot = new Map<number, Entry>();
  private readonly keys: string[] = [];
  private readonly owner: BackendPools;
  private released = false;

  constructor(owner: BackendPools, entries: ReadonlyArray<[Backend, string, Entry]>) {
    this.owner = owner;
    for (const [backend, key, entry] of entries) {
      this.bySlot.set(backend.index, entry);
      this.keys.push(key);
    }
  }

  dispatcher(backend: Backend): Dispatcher {
    const entry = this.bySlot.get(backend.index);
    // Every backend a generation's balancer can pick was leased with it; anything else is a bug.
    if (entry === undefined) throw new Error(`no pool leased for backend ${backend.id} (slot ${backend.index})`);
    entry.pool ??= poolFor(entry.spec);
    return entry.pool;
  }

  /** Gives the pools back; those no other generation leases are closed once their requests ended. */
  release(): Promise<void> {
    if (this.released) return Promise.resolve();
    this.released = true;
    return this.owner.giveBack(this.keys);
  }
}

export class BackendPools {
  private readonly entries = new Map<string, Entry>();

  /** Pools for `backends` built from `config`: the existing one where nothing changed, else a new one. */
  lease(backends: readonly Backend[], config: Config): PoolLease {
    const taken: Array<[Backend, string, Entry]> = [];
    for (const b of backends) {
      const spec = specOf(b, config);
      const key = keyOf(b, spec);
      let entry = this.entries.get(key);
      if (entry === undefined) {
        entry = { spec, pool: undefined, leases: 0 };
        this.entries.set(key, entry);
      }
      entry.leases++;
      taken.push([b, key, entry]);
    }
    return new PoolLease(this, taken);
  }

  /** Backends leased by some generation now (tests and logs). */
  get size(): number {
    return this.entries.size;
  }

  giveBack(keys: readonly string[]): Promise<void> {
    const closing: Promise<void>[] = [];
    for (const key of keys) {
      const entry = this.entries.get(key);
      if (entry === undefined || --entry.leases > 0) continue;
      this.entries.delete(key);
      if (entry.pool !== undefined) closing.push(entry.pool.close().catch(() => undefined));
    }
    return Promise.all(closing).then(() => undefined);
  }

  /** Shutdown: closes every pool (in-flight requests finish first). */
  async close(): Promise<void> {
    const pools = [...this.entries.values()].flatMap((e) => (e.pool === undefined ? [] : [e.pool]));
    this.entries.clear();
    await Promise.all(pools.map((p) => p.close().catch(() => undefined)));
  }
}
