// The cache's effective settings, built once from the config (like frontendLimits()).
import { join } from 'node:path';
import type { Config } from '../config/types.ts';

export interface CacheSettings {
  /** cache.enabled or moodle.enableCaching. */
  enabled: boolean;
  /** The SQLite file every thread opens. */
  path: string;
  maxSize: number;
  maxEntrySize: number;
  lockTimeoutMs: number;
}

export const CACHE_FILE_NAME = 'cache.sqlite';

export function cacheSettings(config: Config): CacheSettings {
  const c = config.cache;
  return {
    enabled: c.enabled || config.moodle.enableCaching,
    path: c.path ?? join(config.tls.stateDir, CACHE_FILE_NAME),
    maxSize: c.maxSize,
    maxEntrySize: c.maxEntrySize,
    lockTimeoutMs: c.lockTimeoutMs,
  };
}
