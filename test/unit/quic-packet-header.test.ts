import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { parseHeader, newParsedHeader, readVarint, LONG_INITIAL, LONG_HANDSHAKE, QUIC_V1 } from '../../src/wire/packet-header.ts';
import { encodeCid, CID_LEN } from '../../src/wire/cid.ts';

function longHeader(opts: { type: number; version?: number; dcid: Buffer; scid: Buffer; token?: Buffer; size?: number }): Buffer {
  const v = Buffer.alloc(4);
  v.writeUInt32BE(opts.version ?? QUIC_V1);
  const parts = [Buffer.from([0xc0 | (opts.type << 4)]), v, Buffer.from([opts.dcid.length]), opts.dcid, Buffer.from([opts.scid.length]), opts.scid];
  if (opts.type === LONG_INITIAL) {
    const t = opts.token ?? Buffer.alloc(0);
    parts.push(t.length < 64 ? Buffer.from([t.length]) : Buffer.from([0x40 | (t.length >> 8), t.length & 0xff]), t);
  }
  const b = Buffer.concat(parts);
  return opts.size && opts.size > b.length ? Buffer.concat([b, Buffer.alloc(opts.size - b.length)]) : b;
}

test('parses a v1 Initial with CIDs and a token', () => {
  const dcid = randomBytes(8);
  const scid = randomBytes(5);
  const token = randomBytes(100); // two-octet varint length
  const pkt = longHeader({ type: LONG_INITIAL, dcid, scid, token, size: 1200 });
  const h = newParsedHeader();
  assert.equal(parseHeader(pkt, pkt.length, h), true);
  assert.equal(h.long, true);
  assert.equal(h.version, QUIC_V1);
  assert.equal(h.type, LONG_INITIAL);
  assert.deepEqual(pkt.subarray(h.dcidOff, h.dcidOff + h.dcidLen), dcid);
  assert.deepEqual(pkt.subarray(h.scidOff, h.scidOff + h.scidLen), scid);
  assert.deepEqual(pkt.subarray(h.tokenOff, h.tokenOff + h.tokenLen), token);
});

test('parses a Handshake packet (no token) and a short header with our CID length', () => {
  const h = newParsedHeader();
  const dcid = encodeCid(2);
  const hs = longHeader({ type: LONG_HANDSHAKE, dcid, scid: randomBytes(8), size: 100 });
  assert.equal(parseHeader(hs, hs.length, h), true);
  assert.equal(h.type, LONG_HANDSHAKE);
  assert.equal(h.tokenLen, 0);
  const short = Buffer.concat([Buffer.from([0x41]), dcid, randomBytes(40)]);
  assert.equal(parseHeader(short, short.length, h), true);
  assert.equal(h.long, false);
  assert.equal(h.dcidOff, 1);
  assert.equal(h.dcidLen, CID_LEN);
});

test('unknown versions parse with the invariant header only', () => {
  const h = newParsedHeader();
  const pkt = longHeader({ type: 0, version: 0x1a2a3a4a, dcid: randomBytes(40), scid: randomBytes(3), size: 1200 });
  assert.equal(parseHeader(pkt, pkt.length, h), true);
  assert.equal(h.version, 0x1a2a3a4a);
  assert.equal(h.dcidLen, 40, 'RFC 8999 allows long CIDs in other versions');
  assert.equal(h.type, -1);
});

test('garbage and truncated headers are rejected, never thrown on', () => {
  const h = newParsedHeader();
  assert.equal(parseHeader(Buffer.alloc(0), 0, h), false);
  assert.equal(parseHeader(Buffer.from([0x40, 1, 2]), 3, h), false, 'short header shorter than a CID');
  const full = longHeader({ type: LONG_INITIAL, dcid: randomBytes(8), scid: randomBytes(8), token: randomBytes(10) });
  for (let cut = 1; cut < full.length; cut++) {
    assert.equal(parseHeader(full, cut, h), false, `cut at ${cut}`);
  }
  const tooLongCid = longHeader({ type: LONG_INITIAL, dcid: randomBytes(21), scid: randomBytes(8), size: 1200 });
  assert.equal(parseHeader(tooLongCid, tooLongCid.length, h), false, 'v1 CIDs are at most 20 octets');
  const hugeToken = Buffer.from(full);
  hugeToken[full.length - 11] = 0xbf; // 8-octet varint that runs past the end
  assert.equal(parseHeader(hugeToken, hugeToken.length, h), false);
  for (let i = 0; i < 20000; i++) {
    const junk = randomBytes(1 + (i % 1300));
    parseHeader(junk, junk.length, h); // must not throw
  }
});

test('readVarint decodes RFC 9000 §A.1 examples', () => {
  const cases: Array<[string, number]> = [
    ['c2197c5eff14e88c', 151288809941952652],
    ['9d7f3e7d', 494878333],
    ['7bbd', 15293],
    ['25', 37],
    ['4025', 37],
  ];
  for (const [hex, v] of cases) {
    const b = Buffer.from(hex, 'hex');
    const got = readVarint(b, 0, b.length);
    if (v > Number.MAX_SAFE_INTEGER) assert.equal(got, -1);
    else assert.equal(got, v);
  }
  assert.equal(readVarint(Buffer.from('9d7f', 'hex'), 0, 2), -1);
});
