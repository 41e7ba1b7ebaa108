// Accept-Encoding negotiation (RFC 9110 §12.5.3) against the server's preference order.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import zlib from 'node:zlib';
import { acceptEncodingOf, availableEncodings, HAS_ZSTD, negotiateEncoding, parseAcceptEncoding } from '../../src/compress/negotiate.ts';
import type { CompressionEncoding } from '../../src/config/types.ts';

const PREF: CompressionEncoding[] = ['br', 'zstd', 'gzip'];
const pick = (ae: string | undefined, pref = PREF) => negotiateEncoding(ae, pref);

test('Node 24 has zlib zstd streams, so zstd stays in the preference list', () => {
  assert.equal(HAS_ZSTD, typeof zlib.createZstdCompress === 'function');
  assert.equal(HAS_ZSTD, true, 'quiclb pins Node 24.21, which has zlib.createZstdCompress');
  assert.deepEqual(availableEncodings(PREF), PREF);
});

test('q=0 refuses a coding; the next acceptable one is chosen', () => {
  assert.equal(pick('br;q=0, gzip'), 'gzip');
  assert.equal(pick('br;q=0, zstd;q=0, gzip;q=0'), undefined);
  assert.equal(pick('br;q=0.0, gzip;q=0.000'), undefined);
  assert.equal(pick('br;q=0.001, gzip;q=0'), 'br');
});

test('"*" covers the codings not listed; listed ones keep their own weight', () => {
  assert.equal(pick('*;q=0.5'), 'br');
  assert.equal(pick('*;q=0.5', ['gzip', 'br']), 'gzip');
  assert.equal(pick('*'), 'br');
  assert.equal(pick('*;q=0'), undefined);
  assert.equal(pick('*, br;q=0'), 'zstd');
  assert.equal(pick('br;q=0.2, *;q=0.5'), 'zstd');
});

test('identity: alone it means no coding; weighted above every coding it wins; below, it loses', () => {
  assert.equal(pick('identity'), undefined);
  assert.equal(pick('identity;q=1, gzip;q=0.5'), undefined);
  assert.equal(pick('gzip;q=0.5, identity'), undefined);
  assert.equal(pick('gzip, identity;q=0.5'), 'gzip');
  assert.equal(pick('gzip, identity;q=0'), 'gzip');
  // Equal weights: a coding the client accepts fully is not refused in identity's favour.
  assert.equal(pick('identity, gzip'), 'gzip');
});

test('no header, an empty header: no coding', () => {
  assert.equal(pick(undefined), undefined);
  assert.equal(pick(''), undefined);
  assert.equal(pick(' , ,'), undefined);
});

test('tokens and the q parameter are case-insensitive; x-gzip is gzip', () => {
  assert.equal(pick('GZIP, BR'), 'br');
  assert.equal(pick('Gzip;Q=0.5, bR;q=0.4'), 'gzip');
  assert.equal(pick('x-gzip'), 'gzip');
  assert.equal(pick('deflate, compress'), undefined);
});

test('highest weight wins; equal weights go to the server preference', () => {
  assert.equal(pick('gzip;q=1, br;q=0.9'), 'gzip');
  assert.equal(pick('gzip, deflate, br, zstd'), 'br');
  assert.equal(pick('gzip, deflate, br, zstd', ['zstd', 'br', 'gzip']), 'zstd');
  assert.equal(pick('gzip, deflate, br, zstd', ['gzip']), 'gzip');
  assert.equal(pick('br;q=0.8, gzip;q=0.8', ['gzip', 'br']), 'gzip');
  // A coding the server does not offer is never chosen, however much the client wants it.
  assert.equal(pick('br', ['gzip']), undefined);
});

test('malformed elements are ignored whole, the rest still counts', () => {
  assert.equal(pick('br;q=2, gzip'), 'gzip'); // q above 1
  assert.equal(pick('br;q=0.5000, gzip;q=0.1'), 'gzip'); // four decimals
  assert.equal(pick('br;q=, gzip;q=0.1'), 'gzip');
  assert.equal(pick('br;q=abc, gzip;q=0.1'), 'gzip');
  assert.equal(pick('br;level=1, gzip;q=0.1'), 'gzip'); // no parameter but q exists
  assert.equal(pick('br;q=1;q=0, gzip;q=0.1'), 'gzip'); // two weights
  assert.equal(pick('b r, gzip;q=0.1'), 'gzip'); // not a token
  assert.equal(pick('br ; q=0.5 , gzip;q=0.1'), 'br'); // OWS around ";" is allowed
  assert.equal(pick(',,gzip,'), 'gzip'); // empty list elements
  assert.equal(pick('br;q=-1'), undefined);
});

test('a coding listed twice keeps its lower weight', () => {
  assert.equal(pick('gzip, gzip;q=0'), undefined);
  assert.deepEqual([...parseAcceptEncoding('br;q=0.7, BR;q=0.3')], [['br', 300]]);
});

test('acceptEncodingOf joins repeated fields', () => {
  assert.equal(acceptEncodingOf([['accept', '*/*']]), undefined);
  assert.equal(acceptEncodingOf([['accept-encoding', 'gzip'], ['x', 'y'], ['accept-encoding', 'br;q=0.5']]), 'gzip, br;q=0.5');
  assert.equal(pick(acceptEncodingOf([['accept-encoding', 'br;q=0'], ['accept-encoding', 'gzip']])), 'gzip');
});
