// What a configuration reload can change while quiclb runs, and what needs a restart. Everything is applied
// live except the settings below: they are bound to sockets the primary opened, to the worker threads, or to
// objects the frontends built at start. A reload that changes one of them applies the rest, keeps the
// running value of each of these, and names them in its log line ("needs restart").
import type { Config } from './types.ts';

interface RestartField {
  /** The field as the JSON file names it. */
  name: string;
  /** Its path in Config (durations end in Ms there). */
  path: readonly string[];
}

const field = (name: string, path: string = name): RestartField => ({ name, path: path.split('.') });

export const RESTART_FIELDS: readonly RestartField[] = [
  // Listening sockets (TCP and UDP) are opened once by the primary.
  field('server.httpPort'),
  field('server.httpsPort'),
  field('server.bindAddress'),
  field('admin.port'),
  field('quic.enabled'),
  field('quic.udpBufferSize'),
  // The primary's UDP router sizes its buffers and its Retry policy at start.
  field('quic.maxUdpPayloadSize'),
  field('quic.retryThreshold'),
  // Frontend limits every open connection was set up with (src/config/limits.ts).
  field('server.readTimeout', 'server.readTimeoutMs'),
  field('server.writeTimeout', 'server.writeTimeoutMs'),
  field('server.idleTimeout', 'server.idleTimeoutMs'),
  field('server.maxHeaderSize'),
  // Where the generated certificate lives. (tls.keyRing is not here: every reload reads the key ring again,
  // from the path the new file names, src/primary/keys.ts.)
  field('tls.stateDir'),
  field('server.pidFile'),
  field('logging.format'),
  // The response cache's store is opened at start (cache.maxSize, maxEntrySize and lockTimeout apply live).
  field('cache.enabled'),
  field('cache.path'),
  field('moodle.enableCaching'),
];

function get(obj: unknown, path: readonly string[]): unknown {
  let v = obj;
  for (const k of path) v = v === undefined || v === null ? undefined : (v as Record<string, unknown>)[k];
  return v;
}

function set(obj: unknown, path: readonly string[], value: unknown): void {
  let v = obj as Record<string, unknown>;
  for (const k of path.slice(0, -1)) v = v[k] as Record<string, unknown>;
  const last = path[path.length - 1];
  if (value === undefined) delete v[last];
  else v[last] = value;
}

const same = (a: unknown, b: unknown): boolean => JSON.stringify(a) === JSON.stringify(b);

/** The restart-only settings whose value differs between `running` and `next`, by their JSON names. */
export function restartOnlyChanges(running: Config, next: Config): string[] {
  return RESTART_FIELDS.filter((f) => !same(get(running, f.path), get(next, f.path))).map((f) => f.name);
}

/** `next` with every restart-only setting at its running value: the configuration a reload applies. */
export function effectiveConfig(running: Config, next: Config): Config {
  const out = structuredClone(next);
  for (const f of RESTART_FIELDS) set(out, f.path, structuredClone(get(running, f.path)));
  return out;
}

/** The top-level paths (section.field, backends by id) whose values differ: for the reload's log line. */
export function changedSettings(running: Config, next: Config): string[] {
  const out: string[] = [];
  for (const section of Object.keys(next) as Array<keyof Config>) {
    const a = running[section] as unknown as Record<string, unknown>;
    const b = next[section] as unknown as Record<string, unknown>;
    for (const key of new Set([...Object.keys(a ?? {}), ...Object.keys(b ?? {})])) {
      if (key === 'backendServers') continue;
      if (!same(a?.[key], b?.[key])) out.push(`${section}.${key.endsWith('Ms') ? key.slice(0, -2) : key}`);
    }
  }
  return out;
}
