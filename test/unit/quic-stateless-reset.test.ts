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
} from '../../src/wire/stateless-reset.ts';
import { encodeCid } from '../../src/wire/cid.ts';
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
  const scid = encodeCid(0);
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
