import { test } from 'node:test';
import assert from 'node:assert/strict';
import { encodeCid, decodeCidShard, CID_LEN, CID_FIRST_OCTET, CID_KEY_TAG } from '../../src/wire/cid.ts';

test('every shard index round-trips through a CID', () => {
  for (let shard = 0; shard < 256; shard++) {
    const cid = encodeCid(shard);
    assert.equal(cid.length, CID_LEN);
    assert.equal(cid[0], CID_FIRST_OCTET);
    assert.equal(decodeCidShard(cid, 0, cid.length), shard);
  }
});

test('decodes a CID embedded in a datagram at an offset', () => {
  const cid = encodeCid(7);
  const dgram = Buffer.concat([Buffer.from([0x40]), cid, Buffer.alloc(30)]);
  assert.equal(decodeCidShard(dgram, 1, CID_LEN), 7);
});

test('CIDs are random beyond the two routing octets', () => {
  const seen = new Set<string>();
  for (let i = 0; i < 5000; i++) seen.add(encodeCid(3).subarray(2).toString('hex'));
  assert.equal(seen.size, 5000);
  // Each random octet position takes many values (not a counter or a constant).
  const values = new Set<number>();
  for (let i = 0; i < 500; i++) values.add(encodeCid(3)[10]);
  assert.ok(values.size > 100, `only ${values.size} distinct values`);
});

test('a key tag takes octet 2; the 17 octets after it stay random', () => {
  const cid = encodeCid(5, 0xab);
  assert.equal(cid[CID_KEY_TAG], 0xab);
  assert.equal(decodeCidShard(cid, 0, CID_LEN), 5);
  const seen = new Set<string>();
  for (let i = 0; i < 5000; i++) seen.add(encodeCid(5, 0xab).subarray(CID_KEY_TAG + 1).toString('hex'));
  assert.equal(seen.size, 5000);
  assert.ok(new Set(Array.from({ length: 500 }, () => encodeCid(5)[CID_KEY_TAG])).size > 100, 'without a tag octet 2 is random');
});

test('malformed or foreign CIDs do not decode', () => {
  const cid = encodeCid(1);
  assert.equal(decodeCidShard(cid, 0, 19), -1, 'wrong length');
  assert.equal(decodeCidShard(cid, 0, 8), -1, 'client-style 8-byte CID');
  assert.equal(decodeCidShard(cid, 5, CID_LEN), -1, 'runs past the buffer');
  assert.equal(decodeCidShard(cid.subarray(0, 10), 0, CID_LEN), -1, 'truncated');
  const other = Buffer.from(cid);
  other[0] = (1 << 6) | (CID_LEN - 1); // another config rotation
  assert.equal(decodeCidShard(other, 0, CID_LEN), -1);
  const bad = Buffer.from(cid);
  bad[0] = 0x00;
  assert.equal(decodeCidShard(bad, 0, CID_LEN), -1);
});

test('encodeCid rejects shard indexes that do not fit one octet', () => {
  assert.throws(() => encodeCid(256), RangeError);
  assert.throws(() => encodeCid(-1), RangeError);
});
