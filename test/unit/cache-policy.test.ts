// RFC 9111 storage and freshness rules of src/cache/policy.ts, one directive or rule per test.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ageSeconds, currentAgeMs, freshness, initialAgeMs, storageDecision, usableOnError, type StoragePolicy } from '../../src/cache/policy.ts';
import type { HeaderList } from '../../src/shared/http-types.ts';

const T = Date.UTC(2026, 10, 23, 10, 0, 0);
const date = (ms: number) => new Date(ms).toUTCString();

function decide(headers: HeaderList, opts: { status?: number; method?: string; request?: HeaderList; at?: number } = {}) {
  return storageDecision(opts.method ?? 'GET', opts.request ?? [], opts.status ?? 200, headers, opts.at ?? T);
}

function policy(headers: HeaderList, opts: Parameters<typeof decide>[1] = {}): StoragePolicy {
  const d = decide(headers, opts);
  assert.ok(d.store, `expected storable, got ${d.store ? '' : d.reason}`);
  return d.policy;
}

function refused(headers: HeaderList, opts: Parameters<typeof decide>[1] = {}): string {
  const d = decide(headers, opts);
  assert.ok(!d.store, 'expected the response to be refused');
  return d.reason;
}

test('max-age gives the freshness lifetime', () => {
  assert.equal(policy([['cache-control', 'max-age=60']]).lifetimeMs, 60_000);
});

test('s-maxage wins over max-age in a shared cache and implies proxy-revalidate (RFC 9111 §5.2.2.10)', () => {
  const p = policy([['cache-control', 'max-age=60, s-maxage=5, stale-while-revalidate=30']]);
  assert.equal(p.lifetimeMs, 5000);
  assert.equal(p.mustRevalidate, true);
});

test('Expires minus Date is the lifetime without max-age; max-age wins over Expires (§5.3)', () => {
  assert.equal(policy([['date', date(T)], ['expires', date(T + 120_000)]]).lifetimeMs, 120_000);
  assert.equal(policy([['date', date(T)], ['expires', date(T + 120_000)], ['cache-control', 'max-age=10']]).lifetimeMs, 10_000);
  // Without Date the time the response arrived stands in for it.
  assert.equal(policy([['expires', date(T + 30_000)]], { at: T }).lifetimeMs, 30_000);
});

test('an invalid Expires ("0") is in the past: stale at once, stored only with a validator (§5.3)', () => {
  assert.equal(refused([['expires', '0']]), 'no-use');
  assert.equal(policy([['expires', '0'], ['etag', '"a"']]).lifetimeMs, 0);
});

test('no explicit freshness is not stored: heuristic freshness is declined (§4.2.2)', () => {
  assert.equal(refused([['last-modified', date(T - 86_400_000)], ['etag', '"a"']]), 'no-explicit-freshness');
  assert.equal(refused([['cache-control', 'public'], ['etag', '"a"']]), 'no-explicit-freshness');
  assert.equal(refused([]), 'no-explicit-freshness');
});

test('no-store is never stored', () => {
  assert.equal(refused([['cache-control', 'public, max-age=60, no-store']]), 'no-store');
});

test('private is never stored by a shared cache, qualified or not (§5.2.2.7)', () => {
  assert.equal(refused([['cache-control', 'private, max-age=60']]), 'private');
  assert.equal(refused([['cache-control', 'max-age=60, private="set-cookie"']]), 'private');
  // Moodle's pages of logged-in users.
  assert.equal(refused([['cache-control', 'private, pre-check=0, post-check=0, max-age=0, no-transform'], ['expires', 'Thu, 01 Jan 1970 00:00:00 GMT']]), 'private');
});

test('no-cache is stored with lifetime 0 and never served stale: revalidated on every use (§5.2.2.4)', () => {
  const p = policy([['cache-control', 'no-cache, max-age=600, stale-while-revalidate=60'], ['etag', '"a"']]);
  assert.equal(p.lifetimeMs, 0);
  assert.equal(p.mustRevalidate, true);
  assert.equal(refused([['cache-control', 'no-cache']]), 'no-use');
});

test('must-revalidate and proxy-revalidate forbid serving stale', () => {
  assert.equal(policy([['cache-control', 'max-age=60, must-revalidate']]).mustRevalidate, true);
  assert.equal(policy([['cache-control', 'max-age=60, proxy-revalidate']]).mustRevalidate, true);
  const p = policy([['cache-control', 'max-age=60, must-revalidate, stale-while-revalidate=30, stale-if-error=30']]);
  assert.equal(freshness(p, 70_000), 'stale');
  assert.equal(usableOnError(p, 70_000), false);
});

test('immutable changes nothing for the proxy: fresh for max-age, as Moodle sends its theme files', () => {
  const p = policy([['cache-control', 'public, max-age=604800, immutable'], ['etag', '"x"']]);
  assert.equal(p.lifetimeMs, 604_800_000);
  assert.equal(p.mustRevalidate, false);
});

test('stale-while-revalidate and stale-if-error windows (RFC 5861)', () => {
  const p = policy([['cache-control', 'max-age=10, stale-while-revalidate=20, stale-if-error=100']]);
  assert.equal(freshness(p, 9_999), 'fresh');
  assert.equal(freshness(p, 10_000), 'stale-while-revalidate');
  assert.equal(freshness(p, 29_999), 'stale-while-revalidate');
  assert.equal(freshness(p, 30_000), 'stale');
  assert.equal(usableOnError(p, 109_999), true);
  assert.equal(usableOnError(p, 110_000), false);
  // Useful without a validator: stale-while-revalidate alone can serve it.
  assert.equal(policy([['cache-control', 'max-age=0, stale-while-revalidate=60']]).staleWhileRevalidateMs, 60_000);
});

test('Set-Cookie is never stored, even when public', () => {
  assert.equal(refused([['cache-control', 'public, max-age=60'], ['set-cookie', 'MoodleSession=abc; path=/']]), 'set-cookie');
});

test('Authorization: stored only with public or s-maxage (stricter than §3.5, which also allows must-revalidate)', () => {
  const request: HeaderList = [['authorization', 'Bearer x']];
  assert.equal(refused([['cache-control', 'max-age=60']], { request }), 'authorization');
  assert.equal(refused([['cache-control', 'max-age=60, must-revalidate']], { request }), 'authorization');
  assert.ok(decide([['cache-control', 'public, max-age=60']], { request }).store);
  assert.ok(decide([['cache-control', 's-maxage=60']], { request }).store);
});

test('a request Cookie does not stop storing (Moodle sends MoodleSession with every theme file); the response decides', () => {
  assert.ok(decide([['cache-control', 'public, max-age=60']], { request: [['cookie', 'MoodleSession=abc']] }).store);
});

test('only GET responses are stored', () => {
  assert.equal(refused([['cache-control', 'max-age=60']], { method: 'HEAD' }), 'method');
  assert.equal(refused([['cache-control', 'max-age=60']], { method: 'POST' }), 'method');
});

test('only understood final statuses are stored', () => {
  for (const status of [200, 203, 204, 300, 301, 302, 307, 308, 404, 405, 410, 414, 501]) assert.ok(decide([['cache-control', 'max-age=60']], { status }).store, String(status));
  for (const status of [201, 206, 304, 400, 403, 500, 502, 503]) assert.equal(refused([['cache-control', 'max-age=60']], { status }), 'status', String(status));
});

test('Vary: * is never stored (it can never match, §4.1); other Vary names are kept sorted', () => {
  assert.equal(refused([['cache-control', 'max-age=60'], ['vary', 'Accept-Encoding, *']]), 'vary-star');
  assert.deepEqual(policy([['cache-control', 'max-age=60'], ['vary', 'Accept-Language, accept-encoding'], ['vary', 'Accept-Language']]).varyNames, ['accept-encoding', 'accept-language']);
});

test('validators are kept for revalidation', () => {
  const p = policy([['cache-control', 'max-age=60'], ['etag', '"abc"'], ['last-modified', date(T)]]);
  assert.equal(p.etag, '"abc"');
  assert.equal(p.lastModified, date(T));
});

test('Age: corrected initial age from Date, Age and the request delay (§4.2.3)', () => {
  // Date 10 s before arrival: apparent age 10 s.
  assert.equal(initialAgeMs([['date', date(T - 10_000)]], T - 500, T), 10_000);
  // Age 30 from an upstream cache plus 500 ms spent in flight beats the apparent age.
  assert.equal(initialAgeMs([['date', date(T - 10_000)], ['age', '30']], T - 500, T), 30_500);
  // A Date in the future (clock skew) gives no negative age; an invalid Age is ignored.
  assert.equal(initialAgeMs([['date', date(T + 60_000)], ['age', 'x']], T, T), 0);
  // current_age = corrected_initial_age + resident_time; the Age field is whole seconds.
  assert.equal(currentAgeMs(10_000, T, T + 2_500), 12_500);
  assert.equal(ageSeconds(12_999), 12);
});
