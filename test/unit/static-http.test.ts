// Pure parts of static serving: Range, conditionals, validators, MIME types.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseRange } from '../../src/static/range.ts';
import { evaluateConditionals, ifRangeAllows, validatorsFor } from '../../src/static/conditional.ts';
import { contentTypeFor, DEFAULT_CONTENT_TYPE } from '../../src/static/mime.ts';

test('Range: single ranges, suffixes, open ends, clamping (RFC 9110 §14.1.2)', () => {
  assert.deepEqual(parseRange('bytes=0-99', 1000), { kind: 'single', start: 0, end: 99 });
  assert.deepEqual(parseRange('bytes=900-', 1000), { kind: 'single', start: 900, end: 999 });
  assert.deepEqual(parseRange('bytes=-100', 1000), { kind: 'single', start: 900, end: 999 });
  assert.deepEqual(parseRange('bytes=-5000', 1000), { kind: 'single', start: 0, end: 999 });
  assert.deepEqual(parseRange('bytes=990-5000', 1000), { kind: 'single', start: 990, end: 999 });
  assert.deepEqual(parseRange('Bytes= 5-5 ', 1000), { kind: 'single', start: 5, end: 5 });
  assert.deepEqual(parseRange('bytes=0-0,', 1000), { kind: 'single', start: 0, end: 0 });
});

test('Range: unsatisfiable -> 416; several ranges, other units and bad syntax are ignored (whole file)', () => {
  assert.deepEqual(parseRange('bytes=1000-', 1000), { kind: 'unsatisfiable' });
  assert.deepEqual(parseRange('bytes=1000-2000', 1000), { kind: 'unsatisfiable' });
  assert.deepEqual(parseRange('bytes=-0', 1000), { kind: 'unsatisfiable' });
  assert.deepEqual(parseRange('bytes=0-', 0), { kind: 'unsatisfiable' });
  for (const h of [undefined, 'bytes=0-1,5-6', 'items=0-1', 'bytes=5-1', 'bytes=-', 'bytes=a-b', 'bytes=1-2-3', 'bytes=', '0-1']) {
    assert.deepEqual(parseRange(h, 1000), { kind: 'none' }, String(h));
  }
});

const v = validatorsFor({ size: 1234, mtimeMs: Date.UTC(2026, 0, 2, 3, 4, 5, 678) });
const date = (s: number) => new Date(s * 1000).toUTCString();

test('validators: strong ETag from mtime and size; Last-Modified in whole seconds', () => {
  assert.match(v.etag, /^"[0-9a-f]+-4d2"$/);
  assert.equal(v.lastModified, 'Fri, 02 Jan 2026 03:04:05 GMT');
  assert.notEqual(validatorsFor({ size: 1235, mtimeMs: Date.UTC(2026, 0, 2, 3, 4, 5, 678) }).etag, v.etag);
  assert.notEqual(validatorsFor({ size: 1234, mtimeMs: Date.UTC(2026, 0, 2, 3, 4, 6) }).etag, v.etag);
});

test('If-None-Match (weak comparison, lists, *) and If-Modified-Since -> 304 for GET/HEAD (RFC 9110 §13.2.2)', () => {
  assert.equal(evaluateConditionals('GET', [['if-none-match', v.etag]], v), 'not-modified');
  assert.equal(evaluateConditionals('HEAD', [['if-none-match', `"x", W/${v.etag}`]], v), 'not-modified');
  assert.equal(evaluateConditionals('GET', [['if-none-match', '*']], v), 'not-modified');
  assert.equal(evaluateConditionals('GET', [['if-none-match', '"other"']], v), 'proceed');
  assert.equal(evaluateConditionals('POST', [['if-none-match', v.etag]], v), 'precondition-failed');
  assert.equal(evaluateConditionals('GET', [['if-modified-since', v.lastModified]], v), 'not-modified');
  assert.equal(evaluateConditionals('GET', [['if-modified-since', date(v.mtimeSec + 60)]], v), 'not-modified');
  assert.equal(evaluateConditionals('GET', [['if-modified-since', date(v.mtimeSec - 1)]], v), 'proceed');
  assert.equal(evaluateConditionals('GET', [['if-modified-since', 'garbage']], v), 'proceed');
  // If-None-Match takes precedence over If-Modified-Since.
  assert.equal(evaluateConditionals('GET', [['if-none-match', '"other"'], ['if-modified-since', v.lastModified]], v), 'proceed');
});

test('If-Match (strong) and If-Unmodified-Since -> 412', () => {
  assert.equal(evaluateConditionals('GET', [['if-match', '"other"']], v), 'precondition-failed');
  assert.equal(evaluateConditionals('GET', [['if-match', `W/${v.etag}`]], v), 'precondition-failed');
  assert.equal(evaluateConditionals('GET', [['if-match', v.etag]], v), 'proceed');
  assert.equal(evaluateConditionals('GET', [['if-unmodified-since', date(v.mtimeSec - 1)]], v), 'precondition-failed');
  assert.equal(evaluateConditionals('GET', [['if-unmodified-since', v.lastModified]], v), 'proceed');
});

test('If-Range: strong ETag or the exact Last-Modified, else the whole file', () => {
  assert.equal(ifRangeAllows([], v), true);
  assert.equal(ifRangeAllows([['if-range', v.etag]], v), true);
  assert.equal(ifRangeAllows([['if-range', `W/${v.etag}`]], v), false);
  assert.equal(ifRangeAllows([['if-range', '"stale"']], v), false);
  assert.equal(ifRangeAllows([['if-range', v.lastModified]], v), true);
  assert.equal(ifRangeAllows([['if-range', date(v.mtimeSec - 10)]], v), false);
});

test('MIME types by extension, case-insensitive; unknown and dot-only names are octet-stream', () => {
  assert.equal(contentTypeFor('/theme/styles.CSS'), 'text/css; charset=utf-8');
  assert.equal(contentTypeFor('/lib/javascript.php/x/require.min.js'), 'text/javascript; charset=utf-8');
  assert.equal(contentTypeFor('/pix/i/icon.svg'), 'image/svg+xml');
  assert.equal(contentTypeFor('/f/font.woff2'), 'font/woff2');
  assert.equal(contentTypeFor('/a/file.pdf'), 'application/pdf');
  assert.equal(contentTypeFor('/a/file.mp4'), 'video/mp4');
  assert.equal(contentTypeFor('/a/Makefile'), DEFAULT_CONTENT_TYPE);
  assert.equal(contentTypeFor('/a/.bashrc'), DEFAULT_CONTENT_TYPE);
  assert.equal(contentTypeFor('/a.dir/noext'), DEFAULT_CONTENT_TYPE);
  assert.equal(contentTypeFor('/a/x.unknownext'), DEFAULT_CONTENT_TYPE);
});
