// Random and mutated record streams into the FastCGI response parser, cut at random chunk boundaries: the only
// exception allowed is FastCgiError QUICLB_FCGI_PROTOCOL; every push returns; nothing is amplified or kept.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FCGI_END_REQUEST, FCGI_STDERR, FCGI_STDOUT, RecordParser, decodeNameValuePairs, encodeNameValuePair, recordHeader } from '../../src/fastcgi/records.ts';
import { isFastCgiError } from '../../src/fastcgi/errors.ts';
import { rng } from '../support/seeded-random.ts';

const ITERATIONS = 20_000;

function validStream(r: () => number): Buffer {
  const parts: Buffer[] = [];
  const n = 1 + Math.floor(r() * 5);
  for (let i = 0; i < n; i++) {
    const type = r() < 0.7 ? FCGI_STDOUT : FCGI_STDERR;
    const len = Math.floor(r() * 300);
    const pad = Math.floor(r() * 8);
    parts.push(recordHeader(type, 1, len, pad), Buffer.alloc(len, 0x41 + i), Buffer.alloc(pad));
  }
  parts.push(recordHeader(FCGI_STDOUT, 1, 0));
  const end = Buffer.alloc(8);
  end[4] = Math.floor(r() * 4);
  parts.push(recordHeader(FCGI_END_REQUEST, 1, 8), end);
  return Buffer.concat(parts);
}

function input(r: () => number): Buffer {
  if (r() < 0.3) return Buffer.from(Array.from({ length: Math.floor(r() * 200) }, () => Math.floor(r() * 256)));
  const base = validStream(r);
  const flips = Math.floor(r() * 4);
  for (let i = 0; i < flips; i++) base[Math.floor(r() * base.length)] = Math.floor(r() * 256);
  return r() < 0.2 ? base.subarray(0, Math.floor(r() * base.length)) : base;
}

test(`fuzz: the response parser over ${ITERATIONS} seeded streams only ever throws QUICLB_FCGI_PROTOCOL`, { timeout: 60_000 }, () => {
  const r = rng(0xfc61);
  let failures = 0;
  let clean = 0;
  for (let i = 0; i < ITERATIONS; i++) {
    const bytes = input(r);
    let emitted = 0;
    let events = 0;
    const parser = new RecordParser('client', (e) => {
      events++;
      if (e.kind === 'stream') emitted += e.data.length;
    });
    try {
      let off = 0;
      while (off < bytes.length) {
        const step = 1 + Math.floor(r() * 64);
        parser.push(bytes.subarray(off, off + step));
        off += step;
      }
      clean++;
    } catch (err) {
      if (!isFastCgiError(err) || err.code !== 'QUICLB_FCGI_PROTOCOL') throw err;
      failures++;
    }
    // Content is passed on, never duplicated; one event per record or per piece at most.
    assert.ok(emitted <= bytes.length, `iteration ${i}: emitted ${emitted} of ${bytes.length} bytes`);
    assert.ok(events <= bytes.length + 1, `iteration ${i}: ${events} events for ${bytes.length} bytes`);
  }
  // Both outcomes are exercised, so the test can fail either way.
  assert.ok(failures > 1000 && clean > 1000, `failures ${failures}, clean ${clean}`);
});

test('fuzz: decodeNameValuePairs over seeded mutations only ever throws QUICLB_FCGI_PROTOCOL', () => {
  const r = rng(0xa11);
  const base = Buffer.concat([encodeNameValuePair('HTTP_HOST', 'example.org'), encodeNameValuePair('X', 'y'.repeat(200))]);
  assert.deepEqual(decodeNameValuePairs(base), [['HTTP_HOST', 'example.org'], ['X', 'y'.repeat(200)]]);
  for (let i = 0; i < 5000; i++) {
    const b = Buffer.from(base.subarray(0, Math.floor(r() * (base.length + 1))));
    for (let k = Math.floor(r() * 3); k > 0; k--) b[Math.floor(r() * b.length)] = Math.floor(r() * 256);
    try {
      decodeNameValuePairs(b);
    } catch (err) {
      if (!isFastCgiError(err) || err.code !== 'QUICLB_FCGI_PROTOCOL') throw err;
    }
  }
});
