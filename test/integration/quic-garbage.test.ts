// Hostile input at a bounded rate: random bytes, truncated headers, short headers with unknown CIDs,
// too-short Initials, unsupported versions (answered with Version Negotiation), forged Retry tokens.
// Every shard stays alive, every drop is counted, and a real client still gets served afterwards.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { randomBytes } from 'node:crypto';
import { startQuicHarness, gtlsclient, type QuicHarness } from '../support/quic-harness.ts';
import {
  G_DROP_BAD_HEADER,
  G_DROP_BAD_TOKEN,
  G_DROP_INITIAL_TOO_SHORT,
  G_DROP_SHORT_UNKNOWN_CID,
  G_QUIC_RETRIES,
  G_VERSION_NEGOTIATIONS,
  S_ALIVE,
} from '../../src/shared/state.ts';
import { encodeCid } from '../../src/wire/cid.ts';

let h: QuicHarness;
let sock: dgram.Socket;
const received: Buffer[] = [];

before(async () => {
  // Retry only above 5 new handshakes/s: the forged-token Initials below exercise the token check,
  // the real client at the end gets in without one.
  h = await startQuicHarness({ shards: 2, configure: (c) => (c.quic.retryThreshold = 5) });
  sock = dgram.createSocket('udp4');
  sock.on('message', (m) => received.push(m));
  await new Promise<void>((r) => sock.bind(0, '127.0.0.1', () => r()));
});

after(async () => {
  sock?.close();
  await h?.close();
});

function longHeader(first: number, version: number, dcid: Buffer, scid: Buffer, rest: Buffer, size: number): Buffer {
  const v = Buffer.alloc(4);
  v.writeUInt32BE(version >>> 0);
  const b = Buffer.concat([Buffer.from([first]), v, Buffer.from([dcid.length]), dcid, Buffer.from([scid.length]), scid, rest]);
  return size > b.length ? Buffer.concat([b, randomBytes(size - b.length)]) : b;
}

/** Sends `packets` at about `perMs` datagrams per millisecond (a bounded rate, not a flood of the test box). */
async function sendPaced(packets: Buffer[], perBurst = 50): Promise<void> {
  for (let i = 0; i < packets.length; i += perBurst) {
    for (const p of packets.slice(i, i + perBurst)) sock.send(p, h.port, '127.0.0.1');
    await new Promise((r) => setTimeout(r, 5));
  }
}

const g = (f: number): bigint => h.state.globalCounter(f);

test('garbage is dropped and counted, unsupported versions get Version Negotiation, shards survive', { timeout: 30_000 }, async () => {
  const start = {
    bad: g(G_DROP_BAD_HEADER),
    cid: g(G_DROP_SHORT_UNKNOWN_CID),
    short: g(G_DROP_INITIAL_TOO_SHORT),
    vn: g(G_VERSION_NEGOTIATIONS),
  };
  const packets: Buffer[] = [];
  for (let i = 0; i < 300; i++) {
    // Random bytes with the long-header bit set but truncated before the CIDs end.
    packets.push(Buffer.concat([Buffer.from([0xc0]), randomBytes(1 + (i % 5))]));
    // Short headers whose DCID names no shard (random) or a shard that does not exist (200).
    packets.push(Buffer.concat([Buffer.from([0x40]), randomBytes(40)]));
    packets.push(Buffer.concat([Buffer.from([0x40]), encodeCid(200), randomBytes(30)]));
    // v1 Initials in datagrams under 1200 bytes (RFC 9000 §14.1).
    packets.push(longHeader(0xc0, 1, randomBytes(8), randomBytes(8), Buffer.from([0]), 600));
    // Fully random datagrams of random sizes.
    packets.push(randomBytes(1 + ((i * 97) % 1400)));
  }
  // Unsupported versions in full-size datagrams: answered with Version Negotiation.
  const vnDcid = randomBytes(8);
  for (let i = 0; i < 20; i++) packets.push(longHeader(0xc0, 0x1a2a3a4a, vnDcid, randomBytes(8), Buffer.alloc(0), 1200));
  await sendPaced(packets);
  await new Promise((r) => setTimeout(r, 300));

  assert.ok(g(G_DROP_BAD_HEADER) - start.bad >= 300n, 'truncated headers counted');
  assert.ok(g(G_DROP_SHORT_UNKNOWN_CID) - start.cid >= 600n, 'unknown CIDs counted');
  assert.ok(g(G_DROP_INITIAL_TOO_SHORT) - start.short >= 300n, 'short Initials counted');
  // At least our 20; random full-size datagrams with the long-header bit also name unknown versions.
  assert.ok(g(G_VERSION_NEGOTIATIONS) - start.vn >= 20n);
  // RFC 9000 §17.2.1: a VN's SCID echoes the DCID the client sent; ours are the ones echoing vnDcid.
  const scidOf = (m: Buffer): Buffer => m.subarray(7 + m[5], 7 + m[5] + m[6 + m[5]]);
  const vn = received.filter((m) => m.length > 7 && (m[0] & 0x80) !== 0 && m.readUInt32BE(1) === 0 && scidOf(m).equals(vnDcid));
  assert.ok(vn.length >= 15, `Version Negotiation packets received: ${vn.length}`);
  const first = vn[0];
  const versions: number[] = [];
  for (let p = 7 + first[5] + first[6 + first[5]]; p + 4 <= first.length; p += 4) versions.push(first.readUInt32BE(p));
  assert.ok(versions.includes(1), `versions ${versions.map((v) => v.toString(16))}`);

  for (const i of [0, 1]) {
    assert.ok(h.workers[i] !== undefined, `shard ${i} thread alive`);
    assert.equal(h.state.shardGauge(i, S_ALIVE), 1);
  }
  const r = await gtlsclient(h.port, ['/after-garbage']);
  assert.equal(r.code, 0, r.stderr);
});

test('under a handshake flood Initials get a Retry; forged tokens are dropped and counted', { timeout: 30_000 }, async () => {
  const retries = g(G_QUIC_RETRIES);
  const badTokens = g(G_DROP_BAD_TOKEN);
  received.length = 0;
  // Bursts of 40 new connection attempts in well under a second: above retryThreshold (5/s), so Retry answers.
  // On a loaded machine the kernel may drop some datagrams of a burst (socket buffer), so up to 3 bursts.
  for (let burst = 0; burst < 3 && g(G_QUIC_RETRIES) - retries < 30n; burst++) {
    const initials: Buffer[] = [];
    for (let i = 0; i < 40; i++) initials.push(longHeader(0xc0, 1, randomBytes(8), randomBytes(8), Buffer.from([0]), 1200));
    await sendPaced(initials, 40);
    await new Promise((r) => setTimeout(r, 200));
  }
  assert.ok(g(G_QUIC_RETRIES) - retries >= 30n, `retries ${g(G_QUIC_RETRIES) - retries}`);
  const retryPackets = received.filter((m) => (m[0] & 0xf0) === 0xf0 && m.readUInt32BE(1) === 1);
  assert.ok(retryPackets.length >= 30, `Retry packets received: ${retryPackets.length}`);

  // Initials that carry made-up tokens (token length 16) are dropped, counted as bad tokens.
  const forged: Buffer[] = [];
  for (let i = 0; i < 20; i++) {
    forged.push(longHeader(0xc0, 1, encodeCid(0), randomBytes(8), Buffer.concat([Buffer.from([16]), randomBytes(16)]), 1200));
  }
  await sendPaced(forged, 20);
  await new Promise((r) => setTimeout(r, 200));
  assert.equal(g(G_DROP_BAD_TOKEN) - badTokens, 20n);
  for (const i of [0, 1]) assert.ok(h.workers[i] !== undefined, `shard ${i} thread alive`);
});
