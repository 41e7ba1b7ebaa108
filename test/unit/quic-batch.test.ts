import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { DatagramBatchWriter, readBatch, FLAG_NEW_CONNECTION } from '../../src/wire/datagram-batch.ts';
import { CidTable } from '../../src/primary/cid-table.ts';

test('a batch carries datagrams, addresses, flags and ODCIDs through a transfer', () => {
  const w = new DatagramBatchWriter(16 * 1024);
  const sent: Array<{ data: Buffer; host: string; port: number; flags: number; odcid: Buffer | null }> = [];
  const hosts = ['127.0.0.1', '::1', '2001:db8:85a3:8d3:1319:8a2e:370:7348', '198.51.100.200'];
  for (let i = 0; w.fits(1350) && i < 100; i++) {
    const data = randomBytes(1 + ((i * 131) % 1350));
    const odcid = i % 3 === 0 ? randomBytes(8 + (i % 13)) : null;
    const entry = { data, host: hosts[i % hosts.length], port: 1000 + i, flags: i % 2 ? FLAG_NEW_CONNECTION : 0, odcid };
    sent.push(entry);
    w.append(data, data.length, entry.host, entry.port, entry.flags, odcid);
  }
  const m = w.take();
  assert.ok(m);
  assert.equal(w.take(), null, 'the writer starts empty again');
  const transferred = structuredClone(m.buf, { transfer: [m.buf] });
  assert.equal(m.buf.byteLength, 0, 'the buffer moved');
  const got: typeof sent = [];
  assert.equal(readBatch(transferred, m.len, (data, host, port, flags, odcid) => got.push({ data: Buffer.from(data), host, port, flags, odcid: odcid && Buffer.from(odcid) })), true);
  assert.equal(got.length, m.n);
  assert.deepEqual(got, sent);
});

test('a truncated batch stops at the first bad record', () => {
  const w = new DatagramBatchWriter();
  w.append(Buffer.alloc(100, 1), 100, '127.0.0.1', 1);
  w.append(Buffer.alloc(100, 2), 100, '127.0.0.1', 2);
  const m = w.take()!;
  let n = 0;
  assert.equal(readBatch(m.buf, m.len - 10, () => n++), false);
  assert.equal(n, 1);
});

test('the CID table expires entries, evicts the oldest when full, forgets a dead shard', () => {
  const t = new CidTable({ ttlMs: 100, maxEntries: 3 });
  t.insert('a', 0, 0);
  t.insert('b', 1, 10);
  t.insert('c', 1, 20);
  assert.equal(t.lookup('a', 50), 0);
  t.insert('d', 0, 30); // evicts 'a'
  assert.equal(t.lookup('a', 50), -1);
  assert.equal(t.evictions, 1);
  assert.equal(t.dropShard(1), 2);
  assert.equal(t.lookup('b', 50), -1);
  assert.equal(t.lookup('d', 129), 0);
  assert.equal(t.lookup('d', 131), -1, 'expired');
  t.insert('e', 0, 200);
  t.insert('f', 0, 250);
  assert.equal(t.sweep(301), 1);
  assert.equal(t.size, 1);
});
