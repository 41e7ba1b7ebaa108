// A shard's request path, one per configuration generation, and the one reference the frontends call
// through. A reload builds the next generation's objects from its config (Balancer, Forwarder with the
// backends' pools, the pipeline and its phases, the rate limiter's view) and swaps `current`; requests that
// started keep the generation they started with, and once the old pipeline has drained its backend pools
// are given back (those the new generation does not use are closed, src/proxy/pools.ts).
import type { Config } from '../config/types.ts';
import type { ConfigStatus } from '../config/status.ts';
import type { FrontRequest, FrontResponse, RequestHandler } from '../shared/http-types.ts';
import type { Logger } from '../shared/logger.ts';
import type { SharedState } from '../shared/state.ts';
import { Balancer } from '../balancer/balancer.ts';
import type { SessionTable } from '../balancer/session-table.ts';
import { Forwarder } from '../proxy/forward.ts';
import { BackendPools, type PoolLease } from '../proxy/pools.ts';
import { Pipeline } from '../pipeline/pipeline.ts';
import { buildPhases } from '../pipeline/phases/index.ts';
import { RateLimiter } from '../ratelimit/limiter.ts';
import type { ResponseCache } from '../cache/cache.ts';
import { WebSocketProxy } from '../proxy/websocket.ts';
import type { LatencyRecorder } from '../admin/latency.ts';
import type { ShardGeneration } from './messages.ts';

export interface RuntimeOptions {
  shard: number;
  workers: number;
  startedAt: number;
  state: SharedState;
  sessions: SessionTable;
  latency: LatencyRecorder;
  logger: Logger;
  /** Every shard's latency snapshot (a round trip through the primary). */
  collectLatency(): Promise<string[][]>;
  /** The reload status /stats reports. */
  configStatus(): ConfigStatus;
  /** No request of a generation below `below` runs on this shard any more. */
  onDrained(below: number): void;
  /** The shard's connection to the shared response cache, the same for every generation (undefined: off). */
  cache?: ResponseCache;
}

/** Everything one generation's requests use. */
export interface RequestPath {
  generation: number;
  config: Config;
  slots: readonly number[];
  balancer: Balancer;
  limiter: RateLimiter;
  pipeline: Pipeline;
  pools: PoolLease;
  /** This generation's WebSocket tunnels (they keep the generation running until they close). */
  websockets: WebSocketProxy;
}

export class ShardRuntime {
  private readonly opts: RuntimeOptions;
  private readonly pools = new BackendPools();
  private path: RequestPath;
  /** Replaced generations whose requests are still running. */
  private readonly retiring = new Set<RequestPath>();

  constructor(opts: RuntimeOptions, first: ShardGeneration) {
    this.opts = opts;
    this.path = this.build(first);
  }

  /** The handler the frontends call: the current generation's pipeline, read per request. */
  readonly handle: RequestHandler = (req: FrontRequest, res: FrontResponse): void => {
    this.path.pipeline.handle(req, res);
  };

  /** Connection admission (rateLimit.maxConnectionsPerClient) of the current generation, for the frontends. */
  readonly admission = {
    acquireConnection: (peerAddress: string) => this.path.limiter.acquireConnection(peerAddress),
  };

  get current(): RequestPath {
    return this.path;
  }

  /** Builds the request path of `next`; throws (and changes nothing) when it cannot be built. */
  build(next: ShardGeneration): RequestPath {
    const { state, sessions, logger, latency } = this.opts;
    const config = next.config;
    const balancer = new Balancer({ lb: config.loadBalancer, sessionCookie: config.moodle.sessionCookie, state, sessions, slots: next.slots });
    const limiter = RateLimiter.attach(next.rateLimit, config);
    const pools = this.pools.lease(balancer.backends, config, { shards: this.opts.workers, logger });
    try {
      const forwarder = new Forwarder({ config, state, balancer, logger, latency, pools, shards: this.opts.workers });
      const websockets = new WebSocketProxy({ config, state, balancer, logger, shard: this.opts.shard, latency });
      const pipeline = new Pipeline(
        buildPhases({
          config,
          state,
          shard: this.opts.shard,
          balancer,
          forwarder,
          logger,
          limiter,
          cache: this.opts.cache,
          websockets,
          admin: {
            config,
            slots: next.slots,
            configStatus: this.opts.configStatus,
            state,
            startedAt: this.opts.startedAt,
            workers: this.opts.workers,
            // Drains and enables from the dashboard, and failed logins, are logged with the client address.
            logger,
            limiter,
            cache: this.opts.cache,
            collectLatency: this.opts.collectLatency,
          },
        }),
        logger,
      );
      return { generation: next.generation, config, slots: next.slots, balancer, limiter, pipeline, pools, websockets };
    } catch (err) {
      void pools.release();
      throw err;
    }
  }

  /**
   * New requests go to `next` from now on. The replaced generation keeps its requests; when the last one
   * ended its pools are given back and the primary is told (onDrained).
   */
  swap(next: RequestPath, freshSlots: readonly number[]): void {
    // A slot new to this generation held another backend once: its latency history is not this one's.
    for (const slot of freshSlots) this.opts.latency.reset(slot);
    const old = this.path;
    this.path = next;
    this.retiring.add(old);
    void old.pipeline.drain().then(() => {
      this.retiring.delete(old);
      void old.pools.release();
      void old.websockets.close();
      this.opts.onDrained(this.oldestRunning());
    });
  }

  /** The oldest generation with a request still running here (the current one when none is older). */
  private oldestRunning(): number {
    let oldest = this.path.generation;
    for (const p of this.retiring) if (p.generation < oldest) oldest = p.generation;
    return oldest;
  }

  /** Shutdown: every pool closes once its requests ended. */
  /**
   * Shutdown, past the drain timeout: every open WebSocket tunnel of every generation gets a close frame
   * (1001 Going Away) and `graceMs` to take it (WebSockets never end on their own).
   */
  async closeTunnels(graceMs: number): Promise<void> {
    await Promise.all([this.path, ...this.retiring].map((p) => p.websockets.closeAll(graceMs)));
  }

  async close(): Promise<void> {
    await Promise.all([this.path, ...this.retiring].map((p) => p.websockets.close()));
    await this.pools.close();
  }
}
