// Durations and byte sizes as the JSON file spells them. Durations: "500ms", "10s", "2m", "1h",
// combinations such as "1m30s", or a plain integer of milliseconds. Sizes: "16KiB", "1MiB", "2.5MB",
// or a plain integer of bytes. Both parse to integers.

import { ConfigError, describeValue } from './errors.ts';

/** setTimeout() clamps anything above 2^31-1 ms to 1 ms, so a longer duration would fire at once. */
export const MAX_DURATION_MS = 2 ** 31 - 1;

const DURATION_UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
// "ms" before "m" so "500ms" is not read as 500 minutes followed by garbage.
const DURATION_PART = /(\d+(?:\.\d+)?)(ms|s|m|h)/y;

export const DURATION_EXPECTED = 'duration like "500ms", "10s", "2m", "1h" or integer milliseconds';

/** Milliseconds, or undefined when `v` is not a valid duration. */
export function tryParseDuration(v: unknown): number | undefined {
  let ms: number;
  if (typeof v === 'number') {
    ms = v;
  } else if (typeof v === 'string' && /^\d+$/.test(v)) {
    ms = Number(v);
  } else if (typeof v === 'string' && v.length > 0) {
    ms = 0;
    DURATION_PART.lastIndex = 0;
    while (DURATION_PART.lastIndex < v.length) {
      const m = DURATION_PART.exec(v);
      if (m === null) return undefined;
      ms += Number(m[1]) * DURATION_UNITS[m[2]];
    }
    ms = Math.round(ms);
  } else {
    return undefined;
  }
  if (!Number.isInteger(ms) || ms < 0 || ms > MAX_DURATION_MS) return undefined;
  return ms;
}

/** Milliseconds; throws ConfigError naming `path`. */
export function parseDuration(v: string | number, path = 'duration'): number {
  const ms = tryParseDuration(v);
  if (ms === undefined) throw ConfigError.at(path, `expected ${DURATION_EXPECTED}, got ${describeValue(v)}`);
  return ms;
}

/** The largest unit that divides exactly: 30000 -> "30s", 90000 -> "90s", 1500 -> "1500ms". */
export function formatDuration(ms: number): string {
  if (!Number.isInteger(ms) || ms < 0) throw new RangeError(`formatDuration: expected integer ms >= 0, got ${ms}`);
  if (ms === 0) return '0ms';
  for (const unit of ['h', 'm', 's'] as const) {
    const size = DURATION_UNITS[unit];
    if (ms % size === 0) return `${ms / size}${unit}`;
  }
  return `${ms}ms`;
}

const KiB = 1024;
const MiB = 1024 * KiB;
const GiB = 1024 * MiB;
const SIZE_UNITS: Record<string, number> = {
  b: 1,
  kb: 1000,
  mb: 1000 ** 2,
  gb: 1000 ** 3,
  kib: KiB,
  mib: MiB,
  gib: GiB,
};
const SIZE_RE = /^(\d+(?:\.\d+)?) ?([a-z]+)?$/i;

export const SIZE_EXPECTED = 'size like "16KiB", "1MiB", "2.5MB" or integer bytes';

/** Bytes, or undefined when `v` is not a valid size. */
export function tryParseSize(v: unknown): number | undefined {
  let bytes: number;
  if (typeof v === 'number') {
    bytes = v;
  } else if (typeof v === 'string') {
    const m = SIZE_RE.exec(v);
    if (m === null) return undefined;
    const unit = m[2] === undefined ? 1 : SIZE_UNITS[m[2].toLowerCase()];
    if (unit === undefined) return undefined;
    bytes = Math.round(Number(m[1]) * unit);
  } else {
    return undefined;
  }
  if (!Number.isSafeInteger(bytes) || bytes < 0) return undefined;
  return bytes;
}

/** Bytes; throws ConfigError naming `path`. */
export function parseSize(v: string | number, path = 'size'): number {
  const bytes = tryParseSize(v);
  if (bytes === undefined) throw ConfigError.at(path, `expected ${SIZE_EXPECTED}, got ${describeValue(v)}`);
  return bytes;
}

/** Binary units when exact ("16KiB", "10MiB"), else the integer byte count. */
export function formatSize(bytes: number): string | number {
  if (bytes > 0) {
    for (const [unit, size] of [['GiB', GiB], ['MiB', MiB], ['KiB', KiB]] as const) {
      if (bytes % size === 0) return `${bytes / size}${unit}`;
    }
  }
  return bytes;
}
