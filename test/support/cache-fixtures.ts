// Shared pieces of the cache tests: a store in a fresh temporary directory, requests, and storing a
// response through the public API (lookup -> fill.tee -> body -> end) as the pipeline does.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { prepareCacheStore, ResponseCache, type CacheOptions } from '../../src/cache/cache.ts';
import type { Fill } from '../../src/cache/fill.ts';
import type { Hit } from '../../src/cache/hit.ts';
import type { CacheSettings } from '../../src/cache/settings.ts';
import { CacheSharedState } from '../../src/shared/cache-state.ts';
import type { BodySink, FrontRequest, HeaderList } from '../../src/shared/http-types.ts';

const dirs: string[] = [];
process.once('exit', () => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** Settings for a store in a fresh temporary directory (removed when the test process exits). */
export function tempSettings(over: Partial<CacheSettings> = {}): CacheSettings {
  const dir = mkdtempSync(join(tmpdir(), 'quiclb-cache-test-'));
  dirs.push(dir);
  return { enabled: true, path: join(dir, 'cache.sqlite'), maxSize: 64 * 1024 * 1024, maxEntrySize: 8 * 1024 * 1024, lockTimeoutMs: 2000, ...over };
}

/** A prepared store and one thread's cache on it. */
export function openTestCache(over: Partial<CacheSettings> = {}, opts: CacheOptions = {}): { cache: ResponseCache; shared: CacheSharedState; settings: CacheSettings } {
  const settings = tempSettings(over);
  const shared = new CacheSharedState();
  prepareCacheStore(settings, shared);
  return { cache: ResponseCache.open(settings, shared.buffer, opts), shared, settings };
}

export function get(path: string, headers: HeaderList = [], method = 'GET'): FrontRequest {
  return {
    protocol: 'HTTP/1.1',
    method,
    scheme: 'https',
    authority: 'moodle.example.edu',
    path,
    headers: [['host', 'moodle.example.edu'], ...headers],
    body: null,
    remoteAddress: '127.0.0.1',
    remotePort: 40000,
    localPort: 443,
    connectionKey: 'test',
    shard: 0,
  };
}

/** A sink that keeps what it gets. */
export class CollectSink implements BodySink {
  chunks: Uint8Array[] = [];
  ended = false;
  write(chunk: Uint8Array): boolean {
    this.chunks.push(chunk);
    return true;
  }
  end(chunk?: Uint8Array): void {
    if (chunk !== undefined) this.chunks.push(chunk);
    this.ended = true;
  }
  onDrain(cb: () => void): void {
    setImmediate(cb);
  }
  text(): string {
    return Buffer.concat(this.chunks).toString();
  }
}

export async function expectFetch(cache: ResponseCache, req: FrontRequest): Promise<Fill> {
  const l = await cache.lookup(req);
  assert.equal(l.kind, 'fetch', `expected a miss for ${req.path}, got ${l.kind}`);
  return (l as { fill: Fill }).fill;
}

export async function expectHit(cache: ResponseCache, req: FrontRequest): Promise<Hit> {
  const l = await cache.lookup(req);
  assert.equal(l.kind, 'hit', `expected a hit for ${req.path}, got ${l.kind}`);
  return (l as { hit: Hit }).hit;
}

/** Stores `body` as the backend's answer to `req` through the public API; body written in `pieces`. */
export async function storeThrough(cache: ResponseCache, req: FrontRequest, headers: HeaderList, body: string | Buffer, status = 200, pieces = 1): Promise<CollectSink> {
  const fill = await expectFetch(cache, req);
  const client = new CollectSink();
  const sink = fill.tee(status, headers, client);
  const buf = Buffer.from(body);
  const step = Math.ceil(buf.byteLength / pieces);
  for (let i = 0; i < buf.byteLength; i += step) sink.write(buf.subarray(i, i + step));
  sink.end();
  fill.release();
  return client;
}

export async function hitBody(hit: Hit): Promise<string> {
  const parts: Uint8Array[] = [];
  for await (const c of hit.body()) parts.push(c);
  return Buffer.concat(parts).toString();
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
