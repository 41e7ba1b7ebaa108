// compressionPolicy().plan(): which responses are compressed and what their headers become.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compressionPolicy, mergeVary, weakenEtag, type CompressionPlan } from '../../src/compress/eligibility.ts';
import { validateConfig } from '../../src/config/load.ts';
import type { CompressionConfig } from '../../src/config/types.ts';
import type { HeaderList } from '../../src/shared/http-types.ts';

function policy(patch: Partial<CompressionConfig> = {}) {
  return compressionPolicy({ ...validateConfig({ compression: { enabled: true } }).compression, ...patch });
}

const BROWSER: HeaderList = [['accept-encoding', 'gzip, deflate, br, zstd']];
const get = (headers: HeaderList = BROWSER) => ({ method: 'GET', headers });

function html(extra: HeaderList = []): HeaderList {
  return [['content-type', 'text/html; charset=utf-8'], ['content-length', '50000'], ...extra];
}

const field = (h: HeaderList, name: string) => h.filter(([k]) => k === name).map(([, v]) => v);

function assertSkipped(plan: CompressionPlan, reason: string): void {
  assert.equal(plan.encoding, undefined);
  assert.equal(plan.encoding === undefined ? plan.reason : 'compress', reason);
}

test('compression is off by default and then changes nothing', () => {
  const p = compressionPolicy(validateConfig({}).compression);
  assert.equal(p.enabled, false);
  const headers = html();
  const plan = p.plan(get(), 200, headers);
  assertSkipped(plan, 'disabled');
  assert.equal(plan.headers, headers);
});

test('an eligible HTML response: br, Content-Length and Accept-Ranges gone, Vary added, ETag weak', () => {
  const plan = policy().plan(get(), 200, html([['etag', '"abc"'], ['accept-ranges', 'bytes'], ['content-digest', 'sha-256=:x:'], ['x-moodle', '1']]));
  assert.equal(plan.encoding, 'br');
  if (plan.encoding === undefined) return;
  assert.equal(plan.level, 4);
  assert.equal(plan.sizeHint, 50000);
  assert.deepEqual(field(plan.headers, 'content-encoding'), ['br']);
  assert.deepEqual(field(plan.headers, 'content-length'), []);
  assert.deepEqual(field(plan.headers, 'accept-ranges'), []);
  assert.deepEqual(field(plan.headers, 'content-digest'), []);
  assert.deepEqual(field(plan.headers, 'vary'), ['Accept-Encoding']);
  assert.deepEqual(field(plan.headers, 'etag'), ['W/"abc"']);
  assert.deepEqual(field(plan.headers, 'x-moodle'), ['1']);
  assert.deepEqual(field(plan.headers, 'content-type'), ['text/html; charset=utf-8']);
});

test('every default text type is compressed, matched without parameters and case', () => {
  const p = policy();
  for (const type of ['text/html', 'Text/CSS', 'application/javascript; charset=utf-8', 'text/javascript', 'application/json', 'image/svg+xml', 'application/xml', 'text/xml', 'text/plain;charset=us-ascii']) {
    assert.equal(p.plan(get(), 200, [['content-type', type]]).encoding, 'br', type);
  }
});

test('images, fonts, archives, PDFs and responses without Content-Type are not compressed', () => {
  const p = policy();
  for (const type of ['image/png', 'image/jpeg', 'image/webp', 'font/woff2', 'application/zip', 'application/pdf', 'video/mp4', 'application/octet-stream', 'text/event-stream', 'text/htmlx']) {
    const headers: HeaderList = [['content-type', type], ['content-length', '500000']];
    const plan = p.plan(get(), 200, headers);
    assertSkipped(plan, 'type');
    assert.equal(plan.headers, headers, `${type}: headers untouched, no Vary`);
  }
  assertSkipped(p.plan(get(), 200, [['content-length', '5000']]), 'type');
});

test('compression.types: configurable, with "type/*" wildcards', () => {
  const p = policy({ types: ['text/*', 'application/vnd.moodle+json'] });
  assert.equal(p.plan(get(), 200, [['content-type', 'text/csv']]).encoding, 'br');
  assert.equal(p.plan(get(), 200, [['content-type', 'application/vnd.moodle+json']]).encoding, 'br');
  assertSkipped(p.plan(get(), 200, [['content-type', 'application/json']]), 'type');
});

test('a body the backend already encoded is passed through untouched', () => {
  for (const ce of ['gzip', 'br', 'identity', 'aes128gcm']) {
    const headers = html([['content-encoding', ce]]);
    const plan = policy().plan(get(), 200, headers);
    assertSkipped(plan, 'encoded');
    assert.equal(plan.headers, headers);
  }
});

test('206 and any Content-Range response are never compressed', () => {
  assertSkipped(policy().plan(get(), 206, html([['content-range', 'bytes 0-49999/100000']])), 'range');
  assertSkipped(policy().plan(get(), 206, html()), 'range');
  assertSkipped(policy().plan(get(), 416, html([['content-range', 'bytes */100000']])), 'range');
  // A Range request the backend answered in full (200) is an ordinary response.
  assert.equal(policy().plan(get([...BROWSER, ['range', 'bytes=0-99']]), 200, html()).encoding, 'br');
});

test('Cache-Control: no-transform on the response or the request stops compression', () => {
  for (const cc of ['no-transform', 'public, No-Transform', 'max-age=60,no-transform']) {
    const headers = html([['cache-control', cc]]);
    const plan = policy().plan(get(), 200, headers);
    assertSkipped(plan, 'no-transform');
    assert.equal(plan.headers, headers);
  }
  const plan = policy().plan(get([...BROWSER, ['cache-control', 'no-transform']]), 200, html());
  assertSkipped(plan, 'no-transform');
  assert.deepEqual(field(plan.headers, 'vary'), ['Accept-Encoding']);
  assert.equal(policy().plan(get(), 200, html([['cache-control', 'no-cache, private']])).encoding, 'br');
});

test('small bodies stay as they are; an unknown length is compressed', () => {
  const p = policy({ minSize: 1024 });
  assertSkipped(p.plan(get(), 200, [['content-type', 'text/html'], ['content-length', '1023']]), 'small');
  assertSkipped(p.plan(get(), 200, [['content-type', 'text/html'], ['content-length', '0']]), 'small');
  assert.equal(p.plan(get(), 200, [['content-type', 'text/html'], ['content-length', '1024']]).encoding, 'br');
  const unknown = p.plan(get(), 200, [['content-type', 'text/html']]);
  assert.equal(unknown.encoding, 'br');
  assert.equal(unknown.encoding === 'br' ? unknown.sizeHint : -1, undefined);
});

test('HEAD, 204, 304 and 1xx: no compression; HEAD keeps its Content-Length and gets Vary', () => {
  const head = policy().plan({ method: 'HEAD', headers: BROWSER }, 200, html());
  assertSkipped(head, 'head');
  assert.deepEqual(field(head.headers, 'content-length'), ['50000']);
  assert.deepEqual(field(head.headers, 'vary'), ['Accept-Encoding']);
  assert.deepEqual(field(head.headers, 'content-encoding'), []);
  for (const status of [100, 103, 204, 304]) {
    const headers = html([['etag', '"x"']]);
    const plan = policy().plan(get(), status, headers);
    assertSkipped(plan, 'no-body');
    assert.equal(plan.headers, headers, String(status));
  }
});

test('other statuses with a body are compressed (an HTML 404 or 500 page)', () => {
  for (const status of [200, 201, 403, 404, 500, 503]) assert.equal(policy().plan(get(), status, html()).encoding, 'br', String(status));
});

test('a client that accepts no offered coding gets the body as is, with Vary', () => {
  for (const headers of [[], [['accept-encoding', 'identity']], [['accept-encoding', 'deflate']]] as HeaderList[]) {
    const plan = policy().plan(get(headers), 200, html([['etag', '"e"']]));
    assertSkipped(plan, 'not-accepted');
    assert.deepEqual(field(plan.headers, 'vary'), ['Accept-Encoding']);
    assert.deepEqual(field(plan.headers, 'content-length'), ['50000']);
    assert.deepEqual(field(plan.headers, 'etag'), ['"e"'], 'an uncompressed body keeps its strong ETag');
  }
});

test('the configured preference and levels are used', () => {
  const p = policy({ encodings: ['gzip', 'zstd'], level: { br: 11, zstd: 7, gzip: 9 } });
  const plan = p.plan(get(), 200, html());
  assert.equal(plan.encoding, 'gzip');
  assert.equal(plan.encoding === 'gzip' ? plan.level : 0, 9);
  const zstd = p.plan(get([['accept-encoding', 'zstd, br']]), 200, html());
  assert.equal(zstd.encoding, 'zstd');
  assert.equal(zstd.encoding === 'zstd' ? zstd.level : 0, 7);
  assertSkipped(p.plan(get([['accept-encoding', 'br']]), 200, html()), 'not-accepted');
});

test('Vary merging: appended once, never duplicated, "*" kept, repeated fields folded', () => {
  const vary = (h: HeaderList) => field(mergeVary(h), 'vary');
  assert.deepEqual(vary([]), ['Accept-Encoding']);
  assert.deepEqual(vary([['vary', 'Cookie']]), ['Cookie, Accept-Encoding']);
  assert.deepEqual(vary([['vary', 'Cookie, accept-encoding']]), ['Cookie, accept-encoding']);
  assert.deepEqual(vary([['vary', 'ACCEPT-ENCODING']]), ['ACCEPT-ENCODING']);
  assert.deepEqual(vary([['vary', '*']]), ['*']);
  assert.deepEqual(vary([['vary', 'Origin'], ['x', '1'], ['vary', 'Cookie, ']]), ['Origin, Cookie, Accept-Encoding']);
  const untouched: HeaderList = [['vary', 'Accept-Encoding']];
  assert.equal(mergeVary(untouched), untouched);
  // Through plan(): the compressed answer carries the merged field once.
  const plan = policy().plan(get(), 200, html([['vary', 'Cookie'], ['vary', 'Origin']]));
  assert.deepEqual(field(plan.headers, 'vary'), ['Cookie, Origin, Accept-Encoding']);
  const star = policy().plan(get(), 200, html([['vary', '*']]));
  assert.deepEqual(field(star.headers, 'vary'), ['*']);
});

test('ETag weakening as nginx: strong -> W/, weak kept, malformed dropped', () => {
  assert.equal(weakenEtag('"abc"'), 'W/"abc"');
  assert.equal(weakenEtag('W/"abc"'), 'W/"abc"');
  assert.equal(weakenEtag('""'), 'W/""');
  assert.equal(weakenEtag('abc'), undefined);
  const plan = policy().plan(get(), 200, html([['etag', 'unquoted']]));
  assert.equal(plan.encoding, 'br');
  assert.deepEqual(field(plan.headers, 'etag'), []);
  const weak = policy().plan(get(), 200, html([['etag', 'W/"v1"']]));
  assert.deepEqual(field(weak.headers, 'etag'), ['W/"v1"']);
});
