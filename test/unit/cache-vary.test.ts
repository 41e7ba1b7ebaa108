// Secondary keys (RFC 9111 §4.1), Accept-Encoding by meaning, and conditional answers from a stored
// response (RFC 9111 §4.3.2, RFC 9110 §13).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { notModified, notModifiedHeaders } from '../../src/cache/conditional.ts';
import { codingQuality, contentCoding, parseAcceptEncoding, pickVariant, varyKey, varyMatches, varyNames } from '../../src/cache/vary.ts';
import type { HeaderList } from '../../src/shared/http-types.ts';

test('Vary values must match; whitespace and line splitting are normalised, absence is a value', () => {
  const key = varyKey(['accept-language', 'x-theme'], [['accept-language', 'de,  en;q=0.5'], ['x-other', '1']]);
  assert.equal(varyMatches(key, [['accept-language', 'de, en;q=0.5']]), true);
  assert.equal(varyMatches(key, [['accept-language', 'de'], ['accept-language', 'en;q=0.5']]), true);
  assert.equal(varyMatches(key, [['accept-language', 'en']]), false);
  assert.equal(varyMatches(key, [['accept-language', 'de,en;q=0.5'], ['x-theme', 'dark']]), false);
  assert.equal(varyMatches(key, []), false);
  assert.equal(varyNames([['vary', 'Accept-Encoding, *']]), '*');
});

test('Vary: Cookie matches the same cookies whether HTTP/2 split them into crumbs or HTTP/1.1 sent one line', () => {
  const key = varyKey(['cookie'], [['cookie', 'MoodleSession=abc; lang=de']]);
  assert.equal(varyMatches(key, [['cookie', 'MoodleSession=abc'], ['cookie', 'lang=de']]), true);
  assert.equal(varyMatches(key, [['cookie', 'MoodleSession=xyz; lang=de']]), false);
  assert.equal(varyMatches(key, []), false);
});

test('Accept-Encoding: qvalues, "*", and identity unless excluded (RFC 9110 §12.5.3)', () => {
  const ae = parseAcceptEncoding('gzip;q=0.5, br, x-gzip;q=0.4, *;q=0.1');
  assert.equal(codingQuality(ae, 'br'), 1);
  assert.equal(codingQuality(ae, 'gzip'), 0.4); // x-gzip is gzip, the later one counts
  assert.equal(codingQuality(ae, 'zstd'), 0.1);
  assert.equal(codingQuality(ae, 'identity'), 1);
  assert.equal(codingQuality(parseAcceptEncoding('gzip, identity;q=0'), 'identity'), 0);
  assert.equal(codingQuality(parseAcceptEncoding('gzip, *;q=0'), 'identity'), 0);
  assert.equal(codingQuality(parseAcceptEncoding('br;q=0'), 'br'), 0);
  // No Accept-Encoding at all: only identity (what every server does; curl without --compressed).
  assert.equal(codingQuality(undefined, 'gzip'), 0);
  assert.equal(codingQuality(undefined, 'identity'), 1);
  assert.equal(contentCoding([['content-encoding', 'X-Gzip']]), 'gzip');
  assert.equal(contentCoding([]), 'identity');
});

const variant = (encoding: string, bodySize: number, vary = '[]', responseTime = 0) => ({ encoding, bodySize, vary, responseTime });

test('a compressed variant serves every client that accepts its coding, whatever else the client lists', () => {
  const br = variant('br', 5000, varyKey(['accept-encoding'], [['accept-encoding', 'gzip, deflate, br, zstd']]));
  assert.equal(pickVariant([br], [['accept-encoding', 'br']]), br);
  assert.equal(pickVariant([br], [['accept-encoding', 'gzip, deflate, br']]), br);
  assert.equal(pickVariant([br], [['accept-encoding', 'gzip']]), undefined);
  assert.equal(pickVariant([br], []), undefined);
});

test('variant choice: the coding the client prefers, then the smaller body, then the newest', () => {
  const identity = variant('identity', 30_000);
  const gzip = variant('gzip', 7000);
  const br = variant('br', 5000);
  const all = [identity, gzip, br];
  assert.equal(pickVariant(all, [['accept-encoding', 'gzip, deflate, br, zstd']]), br);
  assert.equal(pickVariant(all, [['accept-encoding', 'gzip']]), gzip);
  assert.equal(pickVariant(all, [['accept-encoding', 'br;q=0.5, gzip']]), gzip);
  assert.equal(pickVariant(all, []), identity);
  const older = variant('identity', 100, '[]', 1);
  const newer = variant('identity', 100, '[]', 2);
  assert.equal(pickVariant([older, newer], []), newer);
});

test('a variant whose other Vary fields differ is never served', () => {
  const de = variant('identity', 10, varyKey(['accept-language'], [['accept-language', 'de']]));
  assert.equal(pickVariant([de], [['accept-language', 'en']]), undefined);
  assert.equal(pickVariant([de], [['accept-language', 'de']]), de);
});

const stored: HeaderList = [
  ['etag', 'W/"v1"'],
  ['last-modified', 'Mon, 23 Nov 2026 10:00:00 GMT'],
  ['cache-control', 'public, max-age=60'],
  ['content-type', 'text/css'],
  ['age', '3'],
];

test('client validators: If-None-Match by weak comparison, "*", lists; it wins over If-Modified-Since', () => {
  assert.equal(notModified([['if-none-match', '"v1"']], 200, stored), true);
  assert.equal(notModified([['if-none-match', '"v0", W/"v1"']], 200, stored), true);
  assert.equal(notModified([['if-none-match', '*']], 200, stored), true);
  assert.equal(notModified([['if-none-match', '"v2"']], 200, stored), false);
  assert.equal(notModified([['if-none-match', '"v2"'], ['if-modified-since', 'Tue, 24 Nov 2026 10:00:00 GMT']], 200, stored), false);
  assert.equal(notModified([['if-none-match', '"v1"']], 404, stored), false);
});

test('client validators: If-Modified-Since against Last-Modified', () => {
  assert.equal(notModified([['if-modified-since', 'Mon, 23 Nov 2026 10:00:00 GMT']], 200, stored), true);
  assert.equal(notModified([['if-modified-since', 'Mon, 23 Nov 2026 09:59:59 GMT']], 200, stored), false);
  assert.equal(notModified([['if-modified-since', 'garbage']], 200, stored), false);
  assert.deepEqual(notModifiedHeaders(stored), [stored[0], stored[1], stored[2], stored[4]]);
});
