import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { RetryTokenMinter } from '../../src/primary/udp-retry-token.ts';
import { encodeCid } from '../../src/wire/cid.ts';

test('a minted token validates and returns the original DCID', () => {
  const m = new RetryTokenMinter({ lifetimeMs: 5000 });
  const odcid = randomBytes(8);
  const rscid = encodeCid(1);
  const token = m.mint('192.0.2.1', odcid, rscid, 1_000_000);
  const r = m.validate(token, '192.0.2.1', rscid, 1_001_000);
  assert.equal(r.ok, true);
  assert.ok(r.ok && r.odcid.equals(odcid));
});

test('expired, future, wrong-address, wrong-CID, tampered and foreign tokens fail', () => {
  const m = new RetryTokenMinter({ lifetimeMs: 5000 });
  const odcid = randomBytes(12);
  const rscid = encodeCid(0);
  const t0 = 2_000_000;
  const token = m.mint('198.51.100.7', odcid, rscid, t0);
  assert.deepEqual(m.validate(token, '198.51.100.7', rscid, t0 + 5001), { ok: false, reason: 'expired' });
  assert.deepEqual(m.validate(token, '198.51.100.7', rscid, t0 - 5000), { ok: false, reason: 'expired' });
  assert.deepEqual(m.validate(token, '198.51.100.8', rscid, t0), { ok: false, reason: 'bad_mac' });
  assert.deepEqual(m.validate(token, '198.51.100.7', encodeCid(0), t0), { ok: false, reason: 'bad_mac' });
  const tampered = Buffer.from(token);
  tampered[9] ^= 1;
  assert.deepEqual(m.validate(tampered, '198.51.100.7', rscid, t0), { ok: false, reason: 'bad_mac' });
  const other = new RetryTokenMinter();
  assert.deepEqual(other.validate(token, '198.51.100.7', rscid, t0), { ok: false, reason: 'bad_mac' });
  assert.deepEqual(m.validate(token.subarray(0, 10), '198.51.100.7', rscid, t0), { ok: false, reason: 'malformed' });
  assert.deepEqual(m.validate(randomBytes(60), '198.51.100.7', rscid, t0).ok, false);
});

test('the port is not part of the binding (NAT rebinding between Retry and Initial)', () => {
  const m = new RetryTokenMinter();
  const rscid = encodeCid(4);
  const token = m.mint('::1', randomBytes(8), rscid);
  assert.equal(m.validate(token, '::1', rscid).ok, true);
});
