// The connection pools to the backends (upstream.ts: undici's Pool for HTTP, a FastCgiPool for php-fpm), one per
// backend and shard, kept across configuration reloads.
// Each generation of a shard's request path (src/shard/runtime.ts) leases the pools of its backends; a
// backend whose id, address and pool settings did not change keeps its pool, and with it its idle
// keep-alive connections. A pool nobody leases any more (its backend was removed or moved, or the pool
// settings changed) is closed, gracefully: undici's close() lets the requests it still carries finish.
// The previous generation gives its lease back only once its last request ended (Pipeline.drain()). A pool is
// created on its first request (a FastCGI backend on a unix socket never gets one), its lease counted from the
// start, so an idle backend's pool still survives a reload.
import type { Config } from '../config/types.ts';
import type { Backend } from '../balancer/backend.ts';
import type { Logger } from '../shared/logger.ts';
import { fastCgiUpstream, httpUpstream, type Upstream } from './upstream.ts';

/** Where a Forwarder gets the upstream (undici Pool or FastCgiPool) of a backend. */
export interface BackendUpstreams {
  upstream(backend: Backend): Upstream;
}

/** What a shard's upstreams are built with besides the config. */
export interface UpstreamContext {
  /** Shards running a Forwarder: FastCGI pools split backend.maxConnections between them. */
  shards: number;
  logger: Logger;
}

/**
 * Everything an upstream is built from; an upstream is reused only when all of it is unchanged. For FastCGI the
 * backend's whole config entry counts, and moodle.wwwRoot (the document root the parameters name).
 */
function keyOf(backend: Backend, config: Config): string {
  const lb = config.loadBalancer;
  const common = [backend.id, backend.protocol, backend.maxConnections, lb.connectTimeoutMs, lb.backendTimeoutMs, config.server.readTimeoutMs];
  if (backend.protocol === 'fastcgi') {
    return JSON.stringify([...common, configOf(backend, config), config.moodle.wwwRoot ?? null, config.server.maxBodySize]);
  }
  return JSON.stringify([...common, backend.host, backend.port]);
}

function configOf(backend: Backend, config: Config) {
  const b = config.loadBalancer.backendServers.find((s) => s.id === backend.id);
  if (b === undefined) throw new Error(`backend ${backend.id} is not in this configuration`);
  return b;
}

function makeUpstream(backend: Backend, config: Config, ctx: UpstreamContext): Upstream {
  return backend.protocol === 'fastcgi' ? fastCgiUpstream(configOf(backend, config), config, ctx.shards, ctx.logger) : httpUpstream(backend, config);
}

interface Entry {
  make: () => Upstream;
  /** Made on the first request. */
  upstream: Upstream | undefined;
  leases: number;
}

/** One generation's view: the pools of its backends, by slot. */
export class PoolLease implements BackendUpstreams {
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

  upstream(backend: Backend): Upstream {
    const entry = this.bySlot.get(backend.index);
    // Every backend a generation's balancer can pick was leased with it; anything else is a bug.
    if (entry === undefined) throw new Error(`no pool leased for backend ${backend.id} (slot ${backend.index})`);
    entry.upstream ??= entry.make();
    return entry.upstream;
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

  /** Upstreams for `backends` built from `config`: the existing one where nothing changed, else a new one. */
  lease(backends: readonly Backend[], config: Config, ctx: UpstreamContext): PoolLease {
    const taken: Array<[Backend, string, Entry]> = [];
    for (const b of backends) {
      const key = keyOf(b, config);
      let entry = this.entries.get(key);
      if (entry === undefined) {
        entry = { make: () => makeUpstream(b, config, ctx), upstream: undefined, leases: 0 };
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
      if (entry.upstream !== undefined) closing.push(entry.upstream.close().catch(() => undefined));
    }
    return Promise.all(closing).then(() => undefined);
  }

  /** Shutdown: closes every pool (in-flight requests finish first). */
  async close(): Promise<void> {
    const upstreams = [...this.entries.values()].flatMap((e) => (e.upstream === undefined ? [] : [e.upstream]));
    this.entries.clear();
    await Promise.all(upstreams.map((u) => u.close().catch(() => undefined)));
  }
}
