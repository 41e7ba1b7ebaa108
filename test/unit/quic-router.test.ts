// UdpRouter's routing decisions, fed datagrams directly (no socket): what reaches which shard.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import pino from 'pino';
import { UdpRouter, type ShardPort } from '../../src/primary/udp-router.ts';
import { readBatch, FLAG_NEW_CONNECTION } from '../../src/wire/datagram-batch.ts';
import { encodeCid } from '../../src/wire/cid.ts';
import { SharedState, S_CONNECTIONS, G_DROP_SHORT_UNKNOWN_CID, G_DROP_INITIAL_TOO_SHORT } from '../../src/shared/state.ts';
import { quicTestConfig } from '../support/quic-harness.ts';

const RESET_KEY = randomBytes(32);

interface Delivered {
  shard: number;
  data: Buffer;
  flags: number;
}

function setup(alive = [true, true], quicShards = alive.length) {
  const state = new SharedState();
  const delivered: Delivered[] = [];
  const shards: ShardPort[] = alive.map((_, index) => ({
    index,
    alive: () => alive[index],
    post: (msg: any) => {
      readBatch(msg.buf, msg.len, (data, _h, _p, flags) => delivered.push({ shard: index, data: Buffer.from(data), flags }));
    },
  }));
  const router = new UdpRouter({ config: quicTestConfig('/tmp'), state, logger: pino({ level: 'silent' }), shards, quicShards, resetKey: RESET_KEY });
  return { state, router, delivered, alive };
}

function initial(dcid: Buffer, size = 1200): Buffer {
  const b = Buffer.concat([Buffer.from([0xc0, 0, 0, 0, 1, dcid.length]), dcid, Buffer.from([8]), randomBytes(8), Buffer.from([0])]);
  return Buffer.concat([b, randomBytes(size - b.length)]);
}

const tick = () => new Promise((r) => setImmediate(r));

test('short headers route by the shard octet of the DCID, without a table', async () => {
  const { router, delivered, state } = setup();
  router.route(Buffer.concat([Buffer.from([0x40]), encodeCid(1), randomBytes(30)]), '127.0.0.1', 5000);
  router.route(Buffer.concat([Buffer.from([0x40]), encodeCid(0), randomBytes(30)]), '127.0.0.1', 5001);
  router.route(Buffer.concat([Buffer.from([0x40]), encodeCid(7), randomBytes(30)]), '127.0.0.1', 5002);
  await tick();
  assert.deepEqual(delivered.map((d) => d.shard).sort(), [0, 1]);
  assert.equal(state.globalCounter(G_DROP_SHORT_UNKNOWN_CID), 1n);
});

test('a new connection goes to the least-loaded shard, and all its Initials follow it', async () => {
  const { router, delivered, state } = setup();
  state.setShardGauge(0, S_CONNECTIONS, 5);
  const dcid = randomBytes(8);
  router.route(initial(dcid), '127.0.0.1', 6000);
  router.route(initial(dcid), '127.0.0.1', 6000); // Chromium's second ClientHello datagram
  await tick();
  assert.deepEqual(delivered.map((d) => d.shard), [1, 1]);
  assert.equal(delivered[0].flags & FLAG_NEW_CONNECTION, FLAG_NEW_CONNECTION);
  assert.equal(delivered[1].flags & FLAG_NEW_CONNECTION, 0, 'the second one is not a new connection');
  // A burst of new connections does not all land on one shard before the gauges move.
  delivered.length = 0;
  state.setShardGauge(0, S_CONNECTIONS, 0);
  for (let i = 0; i < 10; i++) router.route(initial(randomBytes(8)), '127.0.0.1', 7000 + i);
  await tick();
  const per = [0, 1].map((s) => delivered.filter((d) => d.shard === s).length);
  assert.ok(Math.abs(per[0] - per[1]) <= 2, `spread ${per}`);
});

test('with quicShards 1 (the original quiche binding), every QUIC datagram goes to shard 0', async () => {
  const { router, delivered, state } = setup([true, true, true], 1);
  for (let i = 0; i < 6; i++) router.route(initial(randomBytes(8)), '127.0.0.1', 7100 + i);
  router.route(Buffer.concat([Buffer.from([0x40]), encodeCid(2), randomBytes(30)]), '127.0.0.1', 7200);
  await tick();
  assert.equal(delivered.length, 6);
  assert.deepEqual([...new Set(delivered.map((d) => d.shard))], [0]);
  assert.equal(state.globalCounter(G_DROP_SHORT_UNKNOWN_CID), 1n, 'a CID naming a non-QUIC shard is dropped');
});

test('dead shards get nothing; undersized Initials are dropped', async () => {
  const { router, delivered, state, alive } = setup([true, true]);
  alive[1] = false;
  for (let i = 0; i < 4; i++) router.route(initial(randomBytes(8)), '127.0.0.1', 8000 + i);
  router.route(Buffer.concat([Buffer.from([0x40]), encodeCid(1), randomBytes(30)]), '127.0.0.1', 8100);
  router.route(initial(randomBytes(8), 1100), '127.0.0.1', 8200);
  await tick();
  assert.deepEqual([...new Set(delivered.map((d) => d.shard))], [0]);
  assert.equal(delivered.length, 4);
  assert.equal(state.globalCounter(G_DROP_INITIAL_TOO_SHORT), 1n);
  assert.equal(state.globalCounter(G_DROP_SHORT_UNKNOWN_CID), 1n);
});
