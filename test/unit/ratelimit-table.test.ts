import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ClientTable, PROBE_WINDOW } from '../../src/ratelimit/client-table.ts';
import { clientKeyOf, formatClientKey, type ClientKey } from '../../src/ratelimit/client-key.ts';

const key = (address: string): ClientKey => {
  const k = clientKeyOf(address);
  assert.ok(k !== undefined, address);
  return k;
};

/** Writes `value` into field 0 of the client's slot. */
function put(t: ClientTable, k: ClientKey, now: number, value: number): boolean {
  const slot = t.lock(k, now);
  if (slot < 0) return false;
  t.values[t.fieldBase(slot)] = value;
  t.unlock(slot);
  return true;
}

/** Field 0 of the client's slot, or undefined when the table does not hold it. */
function get(t: ClientTable, k: ClientKey): number | undefined {
  const slot = t.lockIfPresent(k);
  if (slot < 0) return undefined;
  const v = t.values[t.fieldBase(slot)];
  t.unlock(slot);
  return v;
}

test('client keys: IPv4 by address, IPv6 by /64, IPv4-mapped IPv6 is the IPv4 client', () => {
  assert.deepEqual(key('::ffff:203.0.113.7'), key('203.0.113.7'));
  assert.notDeepEqual(key('203.0.113.7'), key('203.0.113.8'));
  assert.deepEqual(key('2001:db8:1:2::1'), key('2001:db8:1:2:ffff:eeee:dddd:cccc'));
  assert.deepEqual(key('2001:db8:1:2::1'), key('[2001:DB8:1:2::99]'));
  assert.notDeepEqual(key('2001:db8:1:2::1'), key('2001:db8:1:3::1'));
  // 0.0.0.0 and the all-zero /64 are real clients too, told apart from empty slots by kind.
  assert.notDeepEqual(key('0.0.0.0'), key('::1'));
  assert.equal(clientKeyOf('unknown'), undefined);
  assert.equal(formatClientKey(key('::ffff:203.0.113.7')), '203.0.113.7');
  assert.equal(formatClientKey(key('2001:db8:1:2:aaaa::1')), '2001:db8:1:2::/64');
  assert.equal(formatClientKey(key('255.254.253.252')), '255.254.253.252');
});

test('a new entry starts zeroed; the same key finds its own slot again', () => {
  const t = ClientTable.create(1024, 2);
  const a = key('198.51.100.1');
  const slot = t.lock(a, 1);
  assert.equal(t.values[t.fieldBase(slot)], 0);
  assert.equal(t.values[t.fieldBase(slot) + 1], 0);
  t.values[t.fieldBase(slot)] = 42;
  t.unlock(slot);
  assert.equal(t.lock(a, 2), slot);
  t.unlock(slot);
  assert.equal(get(t, a), 42);
  assert.equal(get(t, key('198.51.100.2')), undefined, 'lockIfPresent creates nothing');
});

test('a full table recycles its least recently used entries and never grows', () => {
  const t = ClientTable.create(1024, 1);
  const bytes = t.buffer.byteLength;
  assert.equal(bytes, ClientTable.bytesFor(1024, 1));
  const n = t.capacity * 10;
  for (let i = 0; i < n; i++) assert.ok(put(t, key(`10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`), i + 1, i));
  assert.equal(t.buffer.byteLength, bytes);
  let recent = 0;
  for (let i = n - 200; i < n; i++) if (get(t, key(`10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`)) === i) recent++;
  assert.ok(recent >= 195, `only ${recent} of the last 200 clients still held`);
  let old = 0;
  for (let i = 0; i < 1000; i++) if (get(t, key(`10.0.${(i >> 8) & 255}.${i & 255}`)) !== undefined) old++;
  assert.ok(old < 50, `${old} of the first 1000 clients still held`);
  const stats = t.stats();
  assert.ok(stats.evictions >= n - t.capacity, `evictions ${stats.evictions}`);
  assert.equal(stats.overflows, 0);
});

test('the least recently used entry of a window goes first; pinned entries never; a fully pinned window overflows', () => {
  const t = ClientTable.create(8, 1); // capacity == PROBE_WINDOW: every key shares one window
  assert.equal(t.capacity, PROBE_WINDOW);
  const keys = Array.from({ length: 8 }, (_, i) => key(`192.0.2.${i}`));
  keys.forEach((k, i) => put(t, k, 100 + i, i));
  put(t, keys[0], 200, 0); // keys[0] used again: keys[1] is now the least recently used
  assert.ok(put(t, key('198.51.100.9'), 201, 9));
  assert.equal(get(t, keys[1]), undefined, 'keys[1] was recycled');
  assert.equal(get(t, keys[0]), 0);
  // Pin every remaining entry: nothing can be recycled, so a newcomer gets -1 and is counted.
  const held = [keys[0], ...keys.slice(2), key('198.51.100.9')];
  for (const k of held) {
    const slot = t.lock(k, 300);
    t.setPins(slot, 1);
    t.unlock(slot);
  }
  const before = t.stats().overflows;
  assert.equal(t.lock(key('203.0.113.1'), 400), -1);
  assert.equal(t.stats().overflows, before + 1);
  for (const k of held) assert.notEqual(get(t, k), undefined, 'pinned entries survive');
  // Unpin one: it is the one the next newcomer takes.
  const slot = t.lock(keys[3], 500);
  t.setPins(slot, 0);
  t.unlock(slot);
  assert.ok(put(t, key('203.0.113.1'), 600, 1));
  assert.equal(get(t, keys[3]), undefined);
});

test('attach() adopts the same table and refuses other buffers with a stable code', () => {
  const t = ClientTable.create(64, 3);
  const u = ClientTable.attach(t.buffer);
  assert.equal(u.capacity, 64);
  assert.equal(u.fields, 3);
  put(t, key('192.0.2.1'), 1, 7);
  assert.equal(get(u, key('192.0.2.1')), 7);
  assert.throws(() => ClientTable.attach(new SharedArrayBuffer(4096)), { code: 'QUICLB_CLIENT_TABLE_BUFFER' });
  assert.throws(() => ClientTable.create(3, 1), { code: 'QUICLB_CLIENT_TABLE_CAPACITY' });
  assert.equal(ClientTable.create(1000, 1).capacity, 1024, 'rounded up to a power of two');
});
