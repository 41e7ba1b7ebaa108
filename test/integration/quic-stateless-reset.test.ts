// Stateless resets (RFC 9000 §10.3) against gtlsclient (ngtcp2): a client whose connection died with its shard
// learns it from the first packet it sends, instead of waiting for its idle timeout. The shard is killed after
// the handshake; gtlsclient sends its request 1.5 s after the handshake (--delay-stream), into a dead
// connection. Also the router's rules on a real socket: no reset for long headers or packets of 21 octets or
// less, resets smaller than their trigger, and a rate limit that is counted.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { randomBytes } from 'node:crypto';
import pino from 'pino';
import { startQuicHarness, runBounded, quicTestConfig, type QuicHarness } from '../support/quic-harness.ts';
import { UdpRouter } from '../../src/primary/udp-router.ts';
import { ResetTokens, keyTag } from '../../src/wire/stateless-reset.ts';
import { encodeCid } from '../../src/wire/cid.ts';
import { SharedState, G_QUIC_HANDSHAKES, G_QUIC_STATELESS_RESETS, G_QUIC_RESETS_RATE_LIMITED, G_DROP_SHORT_UNKNOWN_CID } from '../../src/shared/state.ts';

/** The idle timeout both sides use: without a reset the client gives up only after it. */
const IDLE_S = 10;

interface ClientRun {
  /** ms from the kill to the client's exit. */
  afterKillMs: number;
  stderr: string;
  /** The token of the stateless reset ngtcp2 recognised ("pkt rx 0 SR token=0x..."), if any. */
  srToken: string | undefined;
  /** stateless_reset_token of the server's transport parameters (the handshake CID's token). */
  handshakeToken: string | undefined;
  /** cid (hex) -> token (hex) of the server's NEW_CONNECTION_ID frames (spare CIDs). */
  spareTokens: Map<string, string>;
}

async function killMidConnection(h: QuicHarness, opts: { restart?: boolean; extra?: string[] } = {}): Promise<ClientRun> {
  const handshakes = h.state.globalCounter(G_QUIC_HANDSHAKES);
  const run = runBounded(
    'gtlsclient',
    ['--exit-on-all-streams-close', `--timeout=${IDLE_S}s`, '--delay-stream=1500ms', ...(opts.extra ?? []), '127.0.0.1', String(h.port), `https://127.0.0.1:${h.port}/x`],
    30_000,
  );
  const deadline = Date.now() + 10_000;
  while (h.state.globalCounter(G_QUIC_HANDSHAKES) === handshakes) {
    assert.ok(Date.now() < deadline, 'handshake');
    await new Promise((r) => setTimeout(r, 10));
  }
  await new Promise((r) => setTimeout(r, 300));
  await h.killShard(0);
  const killedAt = performance.now();
  if (opts.restart) await h.restartShard(0);
  const r = await run;
  const afterKillMs = performance.now() - killedAt;
  const spareTokens = new Map<string, string>();
  for (const m of r.stderr.matchAll(/frm rx \d+ 1RTT NEW_CONNECTION_ID\(0x18\) seq=\d+ cid=0x([0-9a-f]+) retire_prior_to=\d+ stateless_reset_token=0x([0-9a-f]+)/g)) {
    spareTokens.set(m[1], m[2]);
  }
  return {
    afterKillMs,
    stderr: r.stderr,
    srToken: /pkt rx \d+ SR token=0x([0-9a-f]+)/.exec(r.stderr)?.[1],
    handshakeToken: /remote transport_parameters stateless_reset_token=0x([0-9a-f]+)/.exec(r.stderr)?.[1],
    spareTokens,
  };
}

const tail = (s: string) => s.split('\n').slice(-15).join('\n');

test('shard killed mid-connection: the primary resets, the client stops at once (handshake CID token)', { timeout: 60_000 }, async () => {
  const h = await startQuicHarness({ shards: 1, configure: (c) => (c.quic.idleTimeoutMs = IDLE_S * 1000) });
  try {
    const before = h.state.globalCounter(G_QUIC_STATELESS_RESETS);
    const r = await killMidConnection(h);
    assert.ok(r.srToken, `ngtcp2 saw a stateless reset:\n${tail(r.stderr)}`);
    assert.equal(r.srToken, r.handshakeToken, 'it carried the token of the handshake CID, sent in the transport parameters');
    assert.match(r.stderr, /ERR_DRAINING/);
    assert.ok(r.afterKillMs < (IDLE_S * 1000) / 2, `client stopped ${Math.round(r.afterKillMs)} ms after the kill (idle timeout ${IDLE_S} s)`);
    assert.ok(h.state.globalCounter(G_QUIC_STATELESS_RESETS) > before, 'counted');
    console.log(`# reset after kill: client exited ${Math.round(r.afterKillMs)} ms after the kill (request sent ~1.2 s after it)`);
  } finally {
    await h.close();
  }
});

test('shard restarted after the kill: the new incarnation resets the CIDs of the old one', { timeout: 60_000 }, async () => {
  const h = await startQuicHarness({ shards: 1, configure: (c) => (c.quic.idleTimeoutMs = IDLE_S * 1000) });
  try {
    const r = await killMidConnection(h, { restart: true });
    assert.ok(r.srToken, `ngtcp2 saw a stateless reset:\n${tail(r.stderr)}`);
    assert.equal(r.srToken, r.handshakeToken);
    assert.ok(r.afterKillMs < (IDLE_S * 1000) / 2, `client stopped ${Math.round(r.afterKillMs)} ms after the kill`);
  } finally {
    await h.close();
  }
});

test('a client that moved to a spare CID is reset with that CID\'s token (NEW_CONNECTION_ID)', { timeout: 60_000 }, async () => {
  const h = await startQuicHarness({ shards: 1, configure: (c) => (c.quic.idleTimeoutMs = IDLE_S * 1000) });
  try {
    // ngtcp2 migrates (new address, new DCID) when it next sends: with the delayed request, after the kill.
    const r = await killMidConnection(h, { extra: ['--change-local-addr=200ms'] });
    assert.ok(r.srToken, `ngtcp2 saw a stateless reset:\n${tail(r.stderr)}`);
    const spare = [...r.spareTokens].find(([, token]) => token === r.srToken);
    assert.ok(spare, `the reset's token is one of a spare CID: ${r.srToken} in ${JSON.stringify([...r.spareTokens])}`);
    // Derived, not random: the test recomputes it from the key and the CID.
    assert.equal(new ResetTokens(h.resetKey).token(Buffer.from(spare[0], 'hex')).toString('hex'), spare[1]);
    assert.ok(r.afterKillMs < (IDLE_S * 1000) / 2, `client stopped ${Math.round(r.afterKillMs)} ms after the kill`);
  } finally {
    await h.close();
  }
});

async function routerWithDeadShard(resetRate?: { perSecond: number; burst: number }, resetKey: Uint8Array | Uint8Array[] = randomBytes(32)) {
  const state = new SharedState();
  const router = new UdpRouter({
    config: quicTestConfig('/tmp'),
    state,
    logger: pino({ level: 'silent' }),
    shards: [{ index: 0, alive: () => false, post: () => undefined }],
    quicShards: 1,
    resetKey,
    resetRate,
  });
  await router.listen();
  const client = dgram.createSocket('udp4');
  await new Promise<void>((resolve) => client.bind(0, '127.0.0.1', resolve));
  const received: Buffer[] = [];
  client.on('message', (m) => received.push(m));
  const send = (b: Buffer) => new Promise<void>((resolve) => client.send(b, router.address().port, '127.0.0.1', () => resolve()));
  const settle = () => new Promise((r) => setTimeout(r, 150));
  return {
    state,
    router,
    tokens: new ResetTokens(resetKey),
    received,
    send,
    settle,
    close: async () => {
      client.close();
      await router.close();
    },
  };
}

const shortHeader = (cid: Buffer, len: number) => Buffer.concat([Buffer.from([0x40 | 0x01]), cid, randomBytes(Math.max(0, len - 1 - cid.length))]);

test('router rules on a real socket: short headers only, never at 21 octets or less, smaller than the trigger', { timeout: 20_000 }, async () => {
  const r = await routerWithDeadShard();
  try {
    const cid = encodeCid(0);
    await r.send(shortHeader(cid, 21));
    // A Handshake packet (long header) for the dead shard's CID.
    await r.send(Buffer.concat([Buffer.from([0xe0, 0, 0, 0, 1, 20]), cid, Buffer.from([8]), randomBytes(8), randomBytes(60)]));
    await r.settle();
    assert.equal(r.received.length, 0, 'no reset for a 21-octet packet or a long header');
    for (const len of [22, 40, 43, 44, 200, 1350]) {
      r.received.length = 0;
      await r.send(shortHeader(cid, len));
      await r.settle();
      assert.equal(r.received.length, 1, `a reset for a ${len}-octet packet`);
      const reset = r.received[0];
      assert.ok(reset.length >= 21 && reset.length < len, `reset of ${reset.length} octets for ${len}`);
      assert.equal(reset[0] & 0xc0, 0x40);
      assert.deepEqual(reset.subarray(reset.length - 16), r.tokens.token(cid));
    }
    assert.equal(r.state.globalCounter(G_QUIC_STATELESS_RESETS), 6n);
    assert.ok(r.state.globalCounter(G_DROP_SHORT_UNKNOWN_CID) >= 7n);
  } finally {
    await r.close();
  }
});

test('router rate limit: at most the burst, the rest counted as rate-limited', { timeout: 20_000 }, async () => {
  const r = await routerWithDeadShard({ perSecond: 1, burst: 5 });
  try {
    for (let i = 0; i < 20; i++) await r.send(shortHeader(encodeCid(0), 60));
    await r.settle();
    const sent = Number(r.state.globalCounter(G_QUIC_STATELESS_RESETS));
    const limited = Number(r.state.globalCounter(G_QUIC_RESETS_RATE_LIMITED));
    assert.ok(sent >= 5 && sent <= 6, `sent ${sent}`);
    assert.equal(sent + limited, 20);
    assert.equal(r.received.length, sent);
  } finally {
    await r.close();
  }
});

test('router after a key ring rotation (useKeys): each CID is reset with the token of the key it was issued under while that key is in the ring', { timeout: 20_000 }, async () => {
  const [k1, k3] = [randomBytes(32), randomBytes(32)];
  // Two keys share a tag once in 256 (the newer one then answers for both): not this test's subject.
  let k2: Buffer;
  do k2 = randomBytes(32);
  while (keyTag(k2) === keyTag(k1));
  const r = await routerWithDeadShard(undefined, [k1]);
  const resetOf = async (cid: Buffer) => {
    r.received.length = 0;
    await r.send(shortHeader(cid, 100));
    await r.settle();
    assert.equal(r.received.length, 1);
    return r.received[0].subarray(r.received[0].length - 16);
  };
  try {
    const old = encodeCid(0, new ResetTokens(k1).tag);
    assert.deepEqual(await resetOf(old), new ResetTokens(k1).token(old));
    r.router.useKeys({ retryKeys: [randomBytes(32)], resetKeys: [k2, k1] });
    const fresh = encodeCid(0, new ResetTokens(k2).tag);
    assert.deepEqual(await resetOf(old), new ResetTokens(k1).token(old), 'a CID of the old key: its own token');
    assert.deepEqual(await resetOf(fresh), new ResetTokens(k2).token(fresh), 'a CID of the new key');
    r.router.useKeys({ retryKeys: [randomBytes(32)], resetKeys: [k3] });
    assert.deepEqual(await resetOf(old), new ResetTokens(k3).token(old), 'the old key left the ring: the newest key');
  } finally {
    await r.close();
  }
});
