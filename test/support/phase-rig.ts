// What the unit tests of single pipeline phases share: a real Pipeline run on an in-memory exchange with the
// Exchange itself handed back once its done hooks ran (to read what the phases decided on it), a pino logger
// whose lines the test reads, and the proxy's real collaborators (config through validateConfig, SharedState,
// SessionTable, Balancer, Forwarder) for backends on 127.0.0.1.
import pino from 'pino';
import { validateConfig } from '../../src/config/load.ts';
import type { Config } from '../../src/config/types.ts';
import { Pipeline } from '../../src/pipeline/pipeline.ts';
import type { Exchange } from '../../src/pipeline/exchange.ts';
import type { Phase } from '../../src/pipeline/phase.ts';
import { Balancer } from '../../src/balancer/balancer.ts';
import { SessionTable } from '../../src/balancer/session-table.ts';
import { Forwarder } from '../../src/proxy/forward.ts';
import { LatencyRecorder } from '../../src/admin/latency.ts';
import type { Logger } from '../../src/shared/logger.ts';
import { SharedState } from '../../src/shared/state.ts';
import type { FrontRequest } from '../../src/shared/http-types.ts';
import { memoryExchange, type MemoryExchange, type Recorded } from './memory-exchange.ts';

export const silentLogger: Logger = pino({ level: 'silent' });

export interface Ran {
  r: Recorded;
  /** The exchange as the phases left it (backend, attempts, status, cache, script, answeredBy). */
  ex: Exchange;
  m: MemoryExchange;
}

/**
 * Starts one request through a real Pipeline of `phases`: `m` at once (to act as the client meanwhile), and
 * `ran`, which resolves once the response ended (or broke) and every done hook ran. A last phase with only a
 * done hook hands the Exchange out; it changes nothing else.
 */
export function startPhases(phases: ReadonlyArray<Phase | undefined>, init: Parameters<typeof memoryExchange>[0] = {}, logger: Logger = silentLogger): { m: MemoryExchange; ran: Promise<Ran> } {
  let seen!: (ex: Exchange) => void;
  const finished = new Promise<Exchange>((r) => (seen = r));
  const probe: Phase = { name: 'probe', done: (ex) => seen(ex) };
  const list = phases.filter((p): p is Phase => p !== undefined);
  const m = memoryExchange(init);
  new Pipeline([...list, probe], logger).handle(m.req, m.res);
  return { m, ran: Promise.all([m.done, finished]).then(([r, ex]) => ({ r, ex, m })) };
}

/** startPhases(...).ran: one request, start to end. */
export function runPhases(phases: ReadonlyArray<Phase | undefined>, init: Parameters<typeof memoryExchange>[0] = {}, logger: Logger = silentLogger): Promise<Ran> {
  return startPhases(phases, init, logger).ran;
}

/** A terminal phase standing in for the proxy: answers 200 with `body` and records each request that reached it. */
export function answering(body = 'from the backend', headers: Array<[string, string]> = [['content-type', 'text/plain']]): Phase & { reached: FrontRequest[] } {
  const reached: FrontRequest[] = [];
  return {
    name: 'answering',
    reached,
    request(ex) {
      reached.push(ex.req);
      ex.respond(200, [...headers]).end(Buffer.from(body));
      return true;
    },
  };
}

/** A pino logger at `level` whose JSON lines the test reads back (pino writes synchronously to a plain object). */
export function capturingLogger(level: pino.Level = 'info'): { logger: Logger; lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = [];
  const logger = pino({ level }, { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) });
  return { logger, lines };
}

export interface ProxyRig {
  config: Config;
  state: SharedState;
  sessions: SessionTable;
  balancer: Balancer;
  forwarder: Forwarder;
  close(): Promise<void>;
}

/**
 * The proxy's collaborators as a shard builds them (src/shard/runtime.ts), from a raw config document:
 * every backend's slot initialised in SharedState with its configured health, slot = position.
 */
export function proxyRig(raw: Record<string, unknown>, logger: Logger = silentLogger): ProxyRig {
  const config = validateConfig(raw);
  const state = new SharedState();
  config.loadBalancer.backendServers.forEach((b, i) => state.initBackend(i, b.healthy));
  const sessions = new SessionTable(undefined, 1024);
  const balancer = new Balancer({ lb: config.loadBalancer, sessionCookie: config.moodle.sessionCookie, state, sessions });
  const forwarder = new Forwarder({ config, state, balancer, logger, latency: new LatencyRecorder(), shards: 1 });
  return { config, state, sessions, balancer, forwarder, close: () => forwarder.close() };
}

/** An HTTP backend entry for loadBalancer.backendServers. */
export function httpBackend(id: string, port: number, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { id, host: '127.0.0.1', port, ...extra };
}

export const headerValues = (r: Recorded, name: string): string[] => r.headers.filter(([n]) => n === name).map(([, v]) => v);
