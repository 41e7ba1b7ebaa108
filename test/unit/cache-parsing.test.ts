// Field parsing of the cache: Cache-Control (RFC 9111 §5.2), HTTP-date (RFC 9110 §5.6.7), stored header
// lists and the 304 update (RFC 9111 §3.1, §3.2), the primary key.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseCacheControl } from '../../src/cache/cache-control.ts';
import { mergeNotModified, storedHeaders } from '../../src/cache/headers.ts';
import { parseHttpDate } from '../../src/cache/http-date.ts';
import { bypassReason, keyPath, primaryKey } from '../../src/cache/key.ts';
import type { FrontRequest } from '../../src/shared/http-types.ts';

test('Cache-Control: names are case-insensitive, quoted commas do not split, unknown directives are ignored', () => {
  const cc = parseCacheControl('Public, MAX-AGE=60, community="UCI, x", no-transform, S-MaxAge="30"');
  assert.equal(cc.public, true);
  assert.equal(cc.maxAge, 60);
  assert.equal(cc.sMaxage, 30);
  assert.equal(cc.private, false);
});

test('Cache-Control: the most restrictive reading wins when it repeats or is malformed (§4.2.1)', () => {
  assert.equal(parseCacheControl('max-age=60, max-age=5').maxAge, 5);
  assert.equal(parseCacheControl('max-age=abc').maxAge, 0);
  assert.equal(parseCacheControl('max-age').maxAge, 0);
  assert.equal(parseCacheControl('max-age=-1').maxAge, 0);
  // §1.2.2: delta-seconds above 2^31 read as 2^31.
  assert.equal(parseCacheControl('max-age=99999999999').maxAge, 2 ** 31);
  assert.equal(parseCacheControl('no-cache="set-cookie, x-a"').noCache, true);
  assert.equal(parseCacheControl('private="x"').private, true);
  const all = parseCacheControl('no-store, must-revalidate, proxy-revalidate, immutable, stale-while-revalidate=7, stale-if-error=9');
  assert.deepEqual(
    [all.noStore, all.mustRevalidate, all.proxyRevalidate, all.immutable, all.staleWhileRevalidate, all.staleIfError],
    [true, true, true, true, 7, 9],
  );
});

test('HTTP-date: all three formats, as UTC; anything else is not a date', () => {
  const t = Date.UTC(1994, 10, 6, 8, 49, 37);
  assert.equal(parseHttpDate('Sun, 06 Nov 1994 08:49:37 GMT'), t);
  assert.equal(parseHttpDate('Sunday, 06-Nov-94 08:49:37 GMT'), t);
  assert.equal(parseHttpDate('Sun Nov  6 08:49:37 1994'), t);
  for (const bad of ['0', '-1', '', '2026-11-23T10:00:00Z', 'Sun, 06 Nov 1994 08:49:37 PST', 'Sun, 32 Nov 1994 08:49:37 GMT']) {
    assert.equal(parseHttpDate(bad), undefined, bad);
  }
});

test('stored headers drop hop-by-hop fields, the fields Connection names, Age and Content-Length (§3.1)', () => {
  const stored = storedHeaders([
    ['connection', 'close, x-hop'],
    ['x-hop', '1'],
    ['keep-alive', 'timeout=5'],
    ['transfer-encoding', 'chunked'],
    ['age', '20'],
    ['content-length', '10'],
    ['content-type', 'text/css'],
    ['etag', '"a"'],
  ]);
  assert.deepEqual(stored, [['content-type', 'text/css'], ['etag', '"a"']]);
});

test('a 304 replaces the stored fields it carries, but never those describing the stored body (§3.2)', () => {
  const stored = [
    ['content-type', 'text/css'],
    ['content-encoding', 'br'],
    ['cache-control', 'max-age=10'],
    ['x-a', '1'],
    ['x-a', '2'],
    ['etag', '"v1"'],
  ] as Array<[string, string]>;
  const merged = mergeNotModified(stored, [
    ['cache-control', 'max-age=600'],
    ['x-a', '3'],
    ['content-encoding', 'identity'],
    ['content-length', '0'],
    ['set-cookie', 'a=b'],
    ['date', 'Mon, 23 Nov 2026 10:00:00 GMT'],
  ]);
  assert.deepEqual(merged, [
    ['content-type', 'text/css'],
    ['content-encoding', 'br'],
    ['etag', '"v1"'],
    ['cache-control', 'max-age=600'],
    ['x-a', '3'],
    ['date', 'Mon, 23 Nov 2026 10:00:00 GMT'],
  ]);
});

const req = (over: Partial<FrontRequest>): FrontRequest => ({
  protocol: 'HTTP/2',
  method: 'GET',
  scheme: 'https',
  authority: 'Moodle.Example.EDU:443',
  path: '/theme/styles.php/boost/1/all',
  headers: [],
  body: null,
  remoteAddress: '127.0.0.1',
  remotePort: 1,
  localPort: 443,
  connectionKey: 'k',
  shard: 0,
  ...over,
});

test('primary key: scheme, lowercase host without the default port, path with query; the protocol is not part of it', () => {
  assert.equal(primaryKey(req({})), 'https://moodle.example.edu/theme/styles.php/boost/1/all');
  assert.equal(primaryKey(req({ protocol: 'HTTP/1.1' })), primaryKey(req({ protocol: 'HTTP/3' })));
  assert.equal(primaryKey(req({ scheme: 'http', authority: 'h:8080', path: '/a?b=1' })), 'http://h:8080/a?b=1');
  assert.equal(keyPath('https://h/a/b?c'), '/a/b?c');
});

test('bypass: methods other than GET/HEAD, Range requests, requests with a body, no authority', () => {
  assert.equal(bypassReason(req({})), undefined);
  assert.equal(bypassReason(req({ method: 'HEAD' })), undefined);
  assert.equal(bypassReason(req({ method: 'POST' })), 'method');
  assert.equal(bypassReason(req({ headers: [['range', 'bytes=0-10']] })), 'range');
  assert.equal(bypassReason(req({ authority: '' })), 'no-authority');
});
