// Loading the effective Config: read the JSON file, apply env overrides, validate through the one
// schema, and turn zod's issues into ConfigErrors that name the field. toJson() goes the other way
// for `quiclb check-config`.

import { readFileSync } from 'node:fs';
import type { z } from 'zod';
import type { Config } from './types.ts';
import { configSchema } from './schema.ts';
import { applyEnvOverrides, type Env } from './env.ts';
import { ConfigError, describeValue, formatPath, type ConfigIssue } from './errors.ts';
import { formatDuration, formatSize } from './duration.ts';

export { parseDuration, formatDuration, parseSize, formatSize } from './duration.ts';
export { defaultConfigJson, phpFpmConfigJson } from './defaults.ts';
export { ConfigError, isConfigError } from './errors.ts';
export type { ConfigIssue } from './errors.ts';
export { applyEnvOverrides } from './env.ts';

/** Fields that hold byte counts (written back as "16KiB" etc.). Durations are the fields ending in Ms. */
const SIZE_FIELDS = new Set(['maxHeaderSize', 'maxBodySize', 'initialMaxData', 'initialMaxStreamData', 'udpBufferSize', 'minSize', 'maxSize', 'maxEntrySize']);

// Messages for issues the field builders in schema.ts did not word themselves.
function genericMessage(iss: z.core.$ZodRawIssue): string {
  switch (iss.code) {
    case 'invalid_type':
      return `expected ${iss.expected}`;
    case 'invalid_value':
      return `expected one of ${iss.values.map((v) => JSON.stringify(v)).join(', ')}`;
    default:
      return 'expected a valid value';
  }
}

function toIssues(zodIssues: readonly z.core.$ZodIssue[]): ConfigIssue[] {
  const unknown: ConfigIssue[] = [];
  const rest: ConfigIssue[] = [];
  for (const iss of zodIssues) {
    if (iss.code === 'unrecognized_keys') {
      for (const key of iss.keys) {
        const path = formatPath([...iss.path, key]);
        unknown.push({ path, message: `${path}: unknown field` });
      }
      continue;
    }
    const path = formatPath(iss.path);
    const complete = iss.code === 'custom' && (iss.params as { complete?: boolean } | undefined)?.complete === true;
    const message = complete ? `${path}: ${iss.message}` : `${path}: ${iss.message}, got ${describeValue(iss.input)}`;
    rest.push({ path, message });
  }
  // A misspelt key is the likeliest cause of anything else, so it is reported first.
  return [...unknown, ...rest];
}

/** Validates a parsed JSON document (env already applied); throws ConfigError with every issue. */
export function validateConfig(raw: unknown): Config {
  const result = configSchema.safeParse(raw, { reportInput: true, error: genericMessage });
  if (!result.success) throw new ConfigError(toIssues(result.error.issues));
  return result.data;
}

/** JSON.parse with the failure located by line and column. */
export function parseJsonText(text: string, name: string): unknown {
  const body = text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
  try {
    return JSON.parse(body);
  } catch (err) {
    const raw = (err as Error).message;
    const offset = jsonErrorOffset(body, raw);
    const { line, column } = lineColumn(body, offset);
    const detail = raw.replace(/(?: in JSON)? at position \d+.*$/, '').replace(/, ".*" is not valid JSON$/s, '');
    throw ConfigError.at(name, `invalid JSON at line ${line} column ${column}: ${detail}`);
  }
}

// V8 names the position for most errors but not all ("Unexpected token '}', ... is not valid JSON");
// then the longest prefix that is still a valid start of JSON locates it.
function jsonErrorOffset(text: string, message: string): number {
  const m = / at position (\d+)/.exec(message);
  if (m !== null) return Number(m[1]);
  const prefixOk = (n: number): boolean => {
    try {
      JSON.parse(text.slice(0, n));
      return true;
    } catch (e) {
      // Running out of input (V8 says so, or names the position just past the end) is not the error.
      const msg = (e as Error).message;
      const at = / at position (\d+)/.exec(msg);
      return msg.startsWith('Unexpected end of JSON input') || (at !== null && Number(at[1]) >= n);
    }
  };
  let lo = 0;
  let hi = text.length;
  while (lo < hi) {
    const mid = Math.ceil((lo + hi) / 2);
    if (prefixOk(mid)) lo = mid;
    else hi = mid - 1;
  }
  return Math.min(lo, text.length);
}

function lineColumn(text: string, offset: number): { line: number; column: number } {
  let line = 1;
  let lineStart = 0;
  for (let i = 0; i < offset && i < text.length; i++) {
    if (text.charCodeAt(i) === 10) {
      line++;
      lineStart = i + 1;
    }
  }
  return { line, column: offset - lineStart + 1 };
}

export interface LoadOptions {
  /** JSON config file; absent = every default. */
  file?: string;
  /** Defaults to process.env. */
  env?: Env;
}

/** Reads the file (no file = all defaults), applies env overrides, validates. */
export function loadConfig(opts: LoadOptions = {}): Config {
  let raw: unknown = {};
  if (opts.file !== undefined) {
    let text: string;
    try {
      text = readFileSync(opts.file, 'utf8');
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? 'EIO';
      throw ConfigError.at(opts.file, `expected a readable config file, got ${describeValue(opts.file)} (${code})`);
    }
    raw = parseJsonText(text, opts.file);
  }
  return validateConfig(applyEnvOverrides(raw, opts.env ?? process.env));
}

/** A unix-socket backend is written without its placeholder host '' and port 0. */
function backendJson(b: Record<string, unknown>): unknown {
  if (b.socket === undefined) return toJsonValue(b);
  const { host: _host, port: _port, ...rest } = b;
  return toJsonValue(rest);
}

/** The JSON document for `config`: durations back to strings, sizes to "16KiB" where exact. */
export function toJson(config: Config): Record<string, unknown> {
  return toJsonValue(config) as Record<string, unknown>;
}

function toJsonValue(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(toJsonValue);
  if (typeof value !== 'object' || value === null) return value;
  const out: Record<string, unknown> = {};
  for (const [key, v] of Object.entries(value)) {
    if (v === undefined) continue;
    if (key === 'backendServers' && Array.isArray(v)) out[key] = v.map(backendJson);
    else if (key.endsWith('Ms') && typeof v === 'number') out[key.slice(0, -2)] = formatDuration(v);
    else if (SIZE_FIELDS.has(key) && typeof v === 'number') out[key] = formatSize(v);
    else out[key] = toJsonValue(v);
  }
  return out;
}
