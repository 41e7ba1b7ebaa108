// The compression counters appended to the SharedArrayBuffer layout: their own slots (no overlap with
// the last shard's counters or the globals), inside the buffer (Atomics throws RangeError past its end),
// and visible through any view of the same buffer (another thread).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  CC_BYTES_IN,
  CC_BYTES_OUT,
  CC_RESPONSES,
  COMPRESSION_CODINGS,
  G_QUIC_OLD_PATH_PROBES,
  MAX_SHARDS,
  SC_CONNECTIONS_TOTAL,
  SC_REQUESTS,
  SharedState,
} from '../../src/shared/state.ts';

test('compression counters sit after every older region and are shared through the buffer', () => {
  const a = new SharedState();
  const last = MAX_SHARDS - 1;
  a.addShardCounter(last, SC_REQUESTS, 11n);
  a.addShardCounter(last, SC_CONNECTIONS_TOTAL, 12n);
  a.addGlobal(G_QUIC_OLD_PATH_PROBES, 13n);
  COMPRESSION_CODINGS.forEach((c, i) => {
    a.addCompressionCounter(c, CC_RESPONSES, BigInt(100 + i));
    a.addCompressionCounter(c, CC_BYTES_IN, BigInt(200 + i));
    a.addCompressionCounter(c, CC_BYTES_OUT, BigInt(300 + i));
  });
  const b = new SharedState(a.buffer);
  assert.equal(b.shardCounter(last, SC_REQUESTS), 11n);
  assert.equal(b.shardCounter(last, SC_CONNECTIONS_TOTAL), 12n);
  assert.equal(b.globalCounter(G_QUIC_OLD_PATH_PROBES), 13n);
  COMPRESSION_CODINGS.forEach((c, i) => {
    assert.equal(b.compressionCounter(c, CC_RESPONSES), BigInt(100 + i));
    assert.equal(b.compressionCounter(c, CC_BYTES_IN), BigInt(200 + i));
    assert.equal(b.compressionCounter(c, CC_BYTES_OUT), BigInt(300 + i));
  });
});
