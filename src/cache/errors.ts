// Typed cache errors with stable codes (compare `code`, not instanceof: classes do not cross threads).

export const CACHE_STORE_ERROR = 'QUICLB_CACHE_STORE';

/** The store could not be opened or prepared; the message names the file and what to check. */
export class CacheStoreError extends Error {
  readonly code = CACHE_STORE_ERROR;
  readonly path: string;

  constructor(path: string, cause: unknown) {
    const detail = cause instanceof Error ? cause.message : String(cause);
    super(
      `cache.path: cannot open the cache store ${JSON.stringify(path)} (${detail}); ` +
        'check that its directory is writable by quiclb, or set cache.path to a writable file, or set cache.enabled: false',
      { cause },
    );
    this.name = 'CacheStoreError';
    this.path = path;
  }
}

export function isCacheStoreError(err: unknown): err is CacheStoreError {
  return typeof err === 'object' && err !== null && (err as { code?: unknown }).code === CACHE_STORE_ERROR;
}
