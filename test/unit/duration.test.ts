import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatDuration, formatSize, parseDuration, parseSize } from '../../src/config/duration.ts';

test('parseDuration reads units, combinations and plain milliseconds', () => {
  assert.equal(parseDuration('500ms'), 500);
  assert.equal(parseDuration('10s'), 10_000);
  assert.equal(parseDuration('2m'), 120_000);
  assert.equal(parseDuration('1h'), 3_600_000);
  assert.equal(parseDuration('1m30s'), 90_000);
  assert.equal(parseDuration('1.5s'), 1500);
  assert.equal(parseDuration(250), 250);
  assert.equal(parseDuration('250'), 250);
  assert.equal(parseDuration(0), 0);
});

test('parseDuration rejects bad input with the path, what was expected and what was got', () => {
  for (const bad of ['', '10x', '-1s', 's', '1.5.2s', '10 s', 'ms10', '1s ', -5, 1.5, Number.NaN, 2 ** 31]) {
    assert.throws(
      () => parseDuration(bad, 'server.readTimeout'),
      (err: Error & { code?: string; path?: string }) => {
        assert.equal(err.code, 'QUICLB_CONFIG');
        assert.equal(err.path, 'server.readTimeout');
        assert.equal(
          err.message,
          `server.readTimeout: expected duration like "500ms", "10s", "2m", "1h" or integer milliseconds, got ${JSON.stringify(bad)}`,
        );
        return true;
      },
      `input ${String(bad)}`,
    );
  }
});

test('formatDuration picks the largest exact unit and round-trips', () => {
  assert.equal(formatDuration(0), '0ms');
  assert.equal(formatDuration(1500), '1500ms');
  assert.equal(formatDuration(30_000), '30s');
  assert.equal(formatDuration(90_000), '90s');
  assert.equal(formatDuration(120_000), '2m');
  assert.equal(formatDuration(3_600_000), '1h');
  for (const ms of [1, 999, 1000, 59_999, 60_000, 61_000, 7_200_000, 2 ** 31 - 1]) {
    assert.equal(parseDuration(formatDuration(ms)), ms);
  }
  assert.throws(() => formatDuration(-1), RangeError);
});

test('parseSize reads decimal and binary units and plain bytes', () => {
  assert.equal(parseSize('16KiB'), 16_384);
  assert.equal(parseSize('1MiB'), 1_048_576);
  assert.equal(parseSize('2.5MB'), 2_500_000);
  assert.equal(parseSize('1GiB'), 1_073_741_824);
  assert.equal(parseSize('1 KiB'), 1024);
  assert.equal(parseSize('16kib'), 16_384);
  assert.equal(parseSize('10B'), 10);
  assert.equal(parseSize(4096), 4096);
  assert.equal(parseSize('4096'), 4096);
  assert.equal(parseSize(0), 0);
});

test('parseSize rejects bad input naming the path', () => {
  for (const bad of ['', '16XB', '-1', 'KiB', '1..5MB', -1, 1.5]) {
    assert.throws(
      () => parseSize(bad, 'quic.udpBufferSize'),
      { code: 'QUICLB_CONFIG', message: `quic.udpBufferSize: expected size like "16KiB", "1MiB", "2.5MB" or integer bytes, got ${JSON.stringify(bad)}` },
      `input ${String(bad)}`,
    );
  }
});

test('formatSize writes exact binary units and round-trips', () => {
  assert.equal(formatSize(16_384), '16KiB');
  assert.equal(formatSize(10 * 1024 * 1024), '10MiB');
  assert.equal(formatSize(2 * 1024 ** 3), '2GiB');
  assert.equal(formatSize(1350), 1350);
  assert.equal(formatSize(0), 0);
  for (const n of [1, 1023, 1024, 1536, 2_500_000, 4 * 1024 * 1024]) assert.equal(parseSize(formatSize(n)), n);
});
