import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { retryIntegrityTag, retryPacket, versionNegotiation, isSupportedVersion } from '../../src/wire/udp-stateless.ts';
import { parseHeader, newParsedHeader, LONG_RETRY } from '../../src/wire/packet-header.ts';

test('Retry integrity tag matches RFC 9001 Appendix A.4', () => {
  const odcid = Buffer.from('8394c8f03e515708', 'hex');
  const packet = Buffer.from('ff000000010008f067a5502a4262b5746f6b656e04a265ba2eff4d829058fb3f0f2496ba', 'hex');
  const body = packet.subarray(0, packet.length - 16);
  assert.equal(retryIntegrityTag(odcid, body).toString('hex'), '04a265ba2eff4d829058fb3f0f2496ba');
});

test('retryPacket lays out the header and a valid tag', () => {
  const clientScid = randomBytes(8);
  const odcid = randomBytes(12);
  const retryScid = randomBytes(20);
  const token = randomBytes(40);
  const p = retryPacket(clientScid, odcid, retryScid, token);
  const h = newParsedHeader();
  assert.equal(parseHeader(p, p.length, h), true);
  assert.equal(h.type, LONG_RETRY);
  assert.ok(p.subarray(h.dcidOff, h.dcidOff + h.dcidLen).equals(clientScid));
  assert.ok(p.subarray(h.scidOff, h.scidOff + h.scidLen).equals(retryScid));
  assert.ok(p.subarray(h.scidOff + h.scidLen, p.length - 16).equals(token));
  assert.ok(retryIntegrityTag(odcid, p.subarray(0, p.length - 16)).equals(p.subarray(p.length - 16)));
  // The tag depends on the original DCID (a client checks it against its own).
  assert.ok(!retryIntegrityTag(randomBytes(12), p.subarray(0, p.length - 16)).equals(p.subarray(p.length - 16)));
});

test('Version Negotiation echoes the CIDs swapped and lists v1 plus a reserved version', () => {
  const dcid = randomBytes(8);
  const scid = randomBytes(5);
  const p = versionNegotiation(dcid, scid);
  assert.equal(p[0] & 0x80, 0x80);
  assert.equal(p.readUInt32BE(1), 0);
  assert.equal(p[5], 5);
  assert.ok(p.subarray(6, 11).equals(scid));
  assert.equal(p[11], 8);
  assert.ok(p.subarray(12, 20).equals(dcid));
  const versions = [];
  for (let i = 20; i < p.length; i += 4) versions.push(p.readUInt32BE(i));
  assert.ok(versions.includes(1));
  assert.ok(versions.some((v) => (v & 0x0f0f0f0f) === 0x0a0a0a0a), 'a greased version (RFC 9000 §15)');
  assert.equal(isSupportedVersion(1), true);
  assert.equal(isSupportedVersion(0x6b3343cf), false);
});
