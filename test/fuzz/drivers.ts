// One driver per fuzz target: how to make case n of a seed, play it, name its outcome, judge it locally, and
// write it to / read it from a replay file. Network drivers need the quiclb environment (env.ts); the
// in-process QPACK/HTTP/3 driver does not.
import type { Rand } from './random.ts';
import type { FuzzEnv } from './env.ts';
import type { WireCase } from './wire.ts';
import { generateH1Case } from './h1/grammar.ts';
import { h1OutcomeKey, runH1Case } from './h1/client.ts';
import { generateH2Case } from './h2/grammar.ts';
import { h2OutcomeKey, runH2Case } from './h2/client.ts';
import { generateScript, type H3Script } from './h3/script.ts';
import { h3OutcomeKey, runH3Case } from './h3/e2e.ts';
import { runInProcess } from './h3/inprocess.ts';
import { generateQpackCase, runQpackCase, type QpackCase } from './h3/qpack-direct.ts';

export type Protocol = 'h1' | 'h2' | 'h3' | 'qpack';
export const PROTOCOLS: readonly Protocol[] = ['h1', 'h2', 'h3', 'qpack'];

export interface Played {
  key: string;
  /** A local oracle failure (malformed answer, wrong decode, invariant broken); undefined = passed. */
  problem?: string;
}

export interface Driver {
  protocol: Protocol;
  /** Cases in flight at once. */
  concurrency: number;
  needsEnv: boolean;
  generate(r: Rand): { label: string; payload: unknown };
  play(env: FuzzEnv | null, payload: unknown): Promise<Played>;
  /** JSON-safe form for the replay file, and back. */
  save(payload: unknown): unknown;
  load(saved: unknown): unknown;
}

const b64 = (b: Buffer): string => b.toString('base64');
const unb64 = (s: string): Buffer => Buffer.from(s, 'base64');

function saveWire(c: WireCase): unknown {
  return { ...c, writes: c.writes.map(b64) };
}
function loadWire(x: any): WireCase {
  return { ...x, writes: (x.writes as string[]).map(unb64) };
}

const h1: Driver = {
  protocol: 'h1',
  concurrency: 12,
  needsEnv: true,
  generate(r) {
    const c = generateH1Case(r);
    return { label: c.label, payload: c };
  },
  async play(env, payload) {
    // One in eight cases over TLS (ALPN http/1.1): the same frontend behind quiclb's TLS termination.
    const c = payload as WireCase;
    const secure = c.writes.length % 8 === 3;
    const o = await runH1Case(secure ? env!.httpsPort : env!.httpPort, c, secure);
    return { key: `${secure ? 'tls ' : ''}${h1OutcomeKey(o)}`, problem: o.malformed };
  },
  save: (p) => saveWire(p as WireCase),
  load: loadWire,
};

const h2: Driver = {
  protocol: 'h2',
  concurrency: 8,
  needsEnv: true,
  generate(r) {
    const c = generateH2Case(r);
    return { label: c.label, payload: c };
  },
  async play(env, payload) {
    const o = await runH2Case(env!.httpsPort, payload as WireCase);
    return { key: h2OutcomeKey(o), problem: o.malformed };
  },
  save: (p) => saveWire(p as WireCase),
  load: loadWire,
};

function saveScript(s: H3Script): unknown {
  return { ...s, deliveries: s.deliveries.map((d) => ({ ...d, data: b64(d.data) })), acks: s.acks ? [...s.acks] : null, inserts: Number.isFinite(s.inserts) ? s.inserts : null };
}
function loadScript(x: any): H3Script {
  return { ...x, deliveries: x.deliveries.map((d: any) => ({ ...d, data: unb64(d.data) })), acks: x.acks ? new Map(x.acks) : null, inserts: x.inserts ?? Infinity };
}

const h3: Driver = {
  protocol: 'h3',
  concurrency: 4,
  needsEnv: true,
  generate(r) {
    const s = generateScript(r);
    return { label: s.label, payload: s };
  },
  async play(env, payload) {
    const o = await runH3Case(env!.httpsPort, payload as H3Script);
    return { key: h3OutcomeKey(o), problem: o.malformed ?? (o.unanswered ? `valid script not served: ${o.unanswered}` : undefined) };
  },
  save: (p) => saveScript(p as H3Script),
  load: loadScript,
};

/** In-process: half the cases drive the QPACK decoder alone, half a whole H3ServerConnection. */
const qpack: Driver = {
  protocol: 'qpack',
  concurrency: 1,
  needsEnv: false,
  generate(r) {
    if (r.chance(0.5)) {
      const c = generateQpackCase(r);
      return { label: `decoder ${c.label}`, payload: { kind: 'decoder', c } };
    }
    const s = generateScript(r);
    return { label: `connection ${s.label.split(' ')[0]}`, payload: { kind: 'connection', s } };
  },
  async play(_env, payload) {
    const p = payload as { kind: 'decoder'; c: QpackCase } | { kind: 'connection'; s: H3Script };
    if (p.kind === 'decoder') {
      const o = runQpackCase(p.c);
      return { key: `decoder ${o.key}`, problem: o.violations.length > 0 ? o.violations.join('; ') : undefined };
    }
    const o = runInProcess(p.s);
    return { key: `connection ${o.key}`, problem: o.violations.length > 0 ? o.violations.join('; ') : undefined };
  },
  save(payload) {
    const p = payload as { kind: 'decoder'; c: QpackCase } | { kind: 'connection'; s: H3Script };
    if (p.kind === 'connection') return { kind: 'connection', s: saveScript(p.s) };
    return { kind: 'decoder', c: { ...p.c, encoder: b64(p.c.encoder), sections: p.c.sections.map((s) => ({ ...s, bytes: b64(s.bytes) })), inserts: Number.isFinite(p.c.inserts) ? p.c.inserts : null } };
  },
  load(x: any) {
    if (x.kind === 'connection') return { kind: 'connection', s: loadScript(x.s) };
    return { kind: 'decoder', c: { ...x.c, encoder: unb64(x.c.encoder), sections: x.c.sections.map((s: any) => ({ ...s, bytes: unb64(s.bytes) })), inserts: x.c.inserts ?? Infinity } };
  },
};

export const DRIVERS: Record<Protocol, Driver> = { h1, h2, h3, qpack };
