// Stateless reset pieces (RFC 9000 §10.3): token derivation, the size rule, the packet layout, the rate
// limit, and that quiche really puts the derived token of the handshake CID in its transport parameters (a
// quiche client closes on our reset packet, and only on the one with its connection's token).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac, randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import {
  ResetTokens,
  ResetRateLimit,
  buildStatelessReset,
  statelessResetSize,
  MIN_STATELESS_RESET,
  RESET_TOKEN_LEN,
  keyTag,
} from '../../src/wire/stateless-reset.ts';
import { encodeCid, decodeCidShard, CID_KEY_TAG, CID_LEN } from '../../src/wire/cid.ts';
import { loadQuiche, type HostPort, type QuicheConnection } from '../../src/quic/quiche.ts';
import { buildQuicheConfig } from '../../src/quic/quiche-config.ts';
import { ensureSelfSigned } from '../../src/shared/tls-material.ts';
import { quicTestConfig } from '../support/quic-harness.ts';

test('the token is HMAC-SHA256(key, CID) truncated to 16 octets: same for the same key and CID, else different', () => {
  const key = randomBytes(32);
  const cid = encodeCid(3);
  const t = new ResetTokens(key).token(cid);
  assert.equal(t.length, RESET_TOKEN_LEN);
  assert.deepEqual(t, createHmac('sha256', key).update(cid).digest().subarray(0, 16));
  assert.deepEqual(new ResetTokens(Buffer.from(key)).token(cid), t, 'another holder of the key derives the same token');
  assert.notDeepEqual(new ResetTokens(randomBytes(32)).token(cid), t, 'another key, another token');
  assert.notDeepEqual(new ResetTokens(key).token(encodeCid(3)), t, 'another CID, another token');
  // A CID inside a datagram: offset and length select it.
  const packet = Buffer.concat([Buffer.from([0x41]), cid, randomBytes(30)]);
  assert.deepEqual(new ResetTokens(key).token(packet, 1, cid.length), t);
  // quiche's u128: the token octets big endian.
  const big = new ResetTokens(key).tokenBigInt(cid);
  assert.equal(big.toString(16).padStart(32, '0'), t.toString('hex'));
  assert.throws(() => new ResetTokens(randomBytes(8)), RangeError);
});

/** Random keys whose tags differ (two keys share a tag once in 256; the ring then falls back to the newer key). */
function keysWithDistinctTags(n: number): Buffer[] {
  const keys: Buffer[] = [];
  while (keys.length < n) {
    const k = randomBytes(32);
    if (!keys.some((o) => keyTag(o) === keyTag(k))) keys.push(k);
  }
  return keys;
}

test('key ring rotation: a CID carries its key\'s tag, and its token comes from that key while it stays in the ring', () => {
  const [k1, k2, k3] = keysWithDistinctTags(3);
  const before = new ResetTokens([k1]);
  assert.equal(before.tag, keyTag(k1));
  assert.equal(keyTag(Buffer.from(k1)), keyTag(k1), 'every holder of the key computes the same tag');
  const old = encodeCid(4, before.tag);
  assert.equal(old[CID_KEY_TAG], before.tag);
  assert.equal(decodeCidShard(old, 0, CID_LEN), 4, 'the tag does not touch the routing octets');
  // Rotation, the old key kept below the new one.
  const rotated = new ResetTokens([k2, k1]);
  assert.equal(rotated.tag, keyTag(k2), 'new CIDs carry the newest key\'s tag');
  assert.deepEqual(rotated.token(old), before.token(old), 'a CID of the old key keeps its token');
  assert.deepEqual(rotated.token(old), createHmac('sha256', k1).update(old).digest().subarray(0, 16));
  const fresh = encodeCid(4, rotated.tag);
  assert.deepEqual(rotated.token(fresh), new ResetTokens(k2).token(fresh), 'a new CID gets the new key\'s token');
  // Inside a datagram too (the router and the shards read the CID at an offset).
  const packet = Buffer.concat([Buffer.from([0x41]), old, randomBytes(30)]);
  assert.deepEqual(rotated.token(packet, 1, CID_LEN), before.token(old));
  // The old key removed: its CIDs get the newest key's token (the client ignores it and waits for its idle timeout).
  const dropped = new ResetTokens([k3, k2]);
  assert.deepEqual(dropped.token(old), new ResetTokens(k3).token(old));
  assert.deepEqual(dropped.token(fresh), rotated.token(fresh), 'k2 is still in the ring');
  // Not one of our CIDs (another length, another first octet): the newest key.
  const foreign = randomBytes(8);
  assert.deepEqual(rotated.token(foreign), new ResetTokens(k2).token(foreign));
  assert.equal(rotated.sameKeys(new ResetTokens([Buffer.from(k2), Buffer.from(k1)])), true);
  assert.equal(rotated.sameKeys(new ResetTokens([k1, k2])), false, 'order matters: the first key issues');
  assert.throws(() => new ResetTokens([]), RangeError);
  // Two keys of one ring with the same tag (once in 256 rotations): the newer one answers for both.
  const twin = keysWithDistinctTags(1)[0];
  let sameTag: Buffer;
  do sameTag = randomBytes(32);
  while (keyTag(sameTag) !== keyTag(twin));
  const clash = encodeCid(4, keyTag(twin));
  assert.deepEqual(new ResetTokens([sameTag, twin]).token(clash), new ResetTokens(sameTag).token(clash));
});

test('size rule: never at or below 21 octets, always smaller than the trigger, 43-63 octets for big triggers', () => {
  for (let n = 0; n <= MIN_STATELESS_RESET; n++) assert.equal(statelessResetSize(n), 0, `trigger ${n}`);
  assert.equal(statelessResetSize(22), 21);
  assert.equal(statelessResetSize(43), 42);
  assert.equal(statelessResetSize(44, () => 0.999), 43);
  assert.equal(statelessResetSize(50, () => 0.999), 49);
  for (let n = 22; n <= 1500; n++) {
    for (const r of [0, 0.5, 0.999999]) {
      const size = statelessResetSize(n, () => r);
      assert.ok(size >= MIN_STATELESS_RESET && size < n, `trigger ${n}: size ${size}`);
      if (n > 43) assert.ok(size >= 43 && size <= 63, `trigger ${n}: size ${size}`);
    }
  }
});

test('packet layout: short-header form with the fixed bit, random middle, the token last', () => {
  const token = randomBytes(16);
  const seen = new Set<number>();
  for (let i = 0; i < 64; i++) {
    const p = buildStatelessReset(token, 43);
    assert.equal(p.length, 43);
    assert.equal(p[0] & 0xc0, 0x40, 'header form 0, fixed bit 1');
    seen.add(p[0]);
    assert.deepEqual(p.subarray(27), token);
  }
  assert.ok(seen.size > 8, 'the other six bits of the first octet vary');
  assert.throws(() => buildStatelessReset(token, 20), RangeError);
  assert.throws(() => buildStatelessReset(randomBytes(15), 43), RangeError);
});

test('rate limit: a bounded burst, then the refill rate', () => {
  const limit = new ResetRateLimit(10, 3, 0);
  assert.deepEqual([0, 0, 0, 0].map(() => limit.take(0)), [true, true, true, false]);
  assert.equal(limit.take(50), false, 'half a token after 50 ms at 10/s');
  assert.equal(limit.take(100), true);
  assert.equal(limit.take(100), false);
  // A long pause refills only up to the burst.
  assert.deepEqual([1, 1, 1, 1].map(() => limit.take(60_000)), [true, true, true, false]);
});

interface Pair {
  client: QuicheConnection;
  server: QuicheConnection;
  scid: Buffer;
  clientAddr: HostPort;
  serverAddr: HostPort;
}

/** A quiche client and a quiche server connection (accepted as the shards accept) talking in memory. */
function handshake(qconfig: ReturnType<typeof buildQuicheConfig>, tokens: ResetTokens, port: number): Pair {
  const q = loadQuiche();
  const cc = new q.Config();
  cc.verifyPeer(false);
  cc.setApplicationProtos(['h3']);
  cc.setMaxIdleTimeout(10_000);
  cc.setInitialMaxData(1 << 20);
  cc.setInitialMaxStreamDataBidiLocal(1 << 16);
  cc.setInitialMaxStreamsBidi(10);
  const clientAddr = { host: '127.0.0.1', port };
  const serverAddr = { host: '127.0.0.1', port: 443 };
  const client = q.Connection.connect('localhost', randomBytes(16), clientAddr, serverAddr, cc);
  const scid = encodeCid(0, tokens.tag);
  qconfig.setStatelessResetToken(tokens.tokenBigInt(scid));
  const server = q.Connection.accept(scid, null, serverAddr, clientAddr, qconfig);
  const buf = Buffer.alloc(1500);
  for (let round = 0; round < 20 && !(client.isEstablished() && server.isEstablished()); round++) {
    for (const [from, to, info] of [
      [client, server, { from: clientAddr, to: serverAddr }],
      [server, client, { from: serverAddr, to: clientAddr }],
    ] as const) {
      let r;
      while ((r = from.send(buf)) !== null) to.recv(Buffer.from(buf.subarray(0, r[0])), info);
    }
  }
  assert.ok(client.isEstablished() && server.isEstablished(), 'handshake in memory');
  return { client, server, scid, clientAddr, serverAddr };
}

function deliver(p: Pair, packet: Buffer): void {
  try {
    p.client.recv(packet, { from: p.serverAddr, to: p.clientAddr });
  } catch {
    // quiche answers Done for a packet it drops (a wrong token is just undecryptable).
  }
}

test('quiche sends each connection its own derived token (set on the Config right before accept) and a quiche client honours our reset', async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'quiclb-reset-'));
  try {
    const { certFile, keyFile } = await ensureSelfSigned(dir);
    const qconfig = buildQuicheConfig(quicTestConfig(dir), certFile, keyFile);
    const tokens = new ResetTokens(randomBytes(32));
    const a = handshake(qconfig, tokens, 50001);
    const b = handshake(qconfig, tokens, 50002);
    // b's token means nothing to a (so the Config's token did not leak from one connection to the next) ...
    deliver(a, buildStatelessReset(tokens.token(b.scid), 43));
    assert.equal(a.client.isClosed(), false, 'another connection\'s token does not close a');
    // ... and a's own token, which no connection of quiche ever sent, closes it at once.
    deliver(a, buildStatelessReset(tokens.token(a.scid), 43));
    assert.equal(a.client.isClosed(), true, 'a closed on its own reset');
    deliver(b, buildStatelessReset(tokens.token(b.scid), 60));
    assert.equal(b.client.isClosed(), true, 'b closed on its own reset');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('a quiche client whose connection was issued under the old key honours a reset from the rotated ring, and not one from a ring that dropped that key', async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'quiclb-reset-'));
  try {
    const { certFile, keyFile } = await ensureSelfSigned(dir);
    const qconfig = buildQuicheConfig(quicTestConfig(dir), certFile, keyFile);
    const [k1, k2, k3] = keysWithDistinctTags(3);
    const before = new ResetTokens([k1]);
    const a = handshake(qconfig, before, 50011);
    const b = handshake(qconfig, before, 50012);
    // After the rotation the old key went: nothing in the ring knows a's CID, and its reset means nothing to a.
    deliver(a, buildStatelessReset(new ResetTokens([k3, k2]).token(a.scid), 43));
    assert.equal(a.client.isClosed(), false, 'a token of another key does not close a');
    // The rotated ring that kept the old key below the new one resets both with the token they were given.
    const rotated = new ResetTokens([k2, k1]);
    deliver(a, buildStatelessReset(rotated.token(a.scid), 43));
    assert.equal(a.client.isClosed(), true, 'a closed on the rotated ring\'s reset');
    deliver(b, buildStatelessReset(rotated.token(b.scid), 50));
    assert.equal(b.client.isClosed(), true, 'b closed on the rotated ring\'s reset');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
