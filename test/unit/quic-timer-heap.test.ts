import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TimerHeap, TimerDriver, type HeapEntry } from '../../src/quic/timer-heap.ts';

interface E extends HeapEntry {
  id: number;
}
const entry = (id: number): E => ({ id, deadline: 0, heapIndex: -1 });

test('pops in deadline order across inserts, moves and removals', () => {
  const heap = new TimerHeap<E>();
  const items = Array.from({ length: 500 }, (_, i) => entry(i));
  let seed = 42;
  const rnd = () => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff) * 10_000;
  for (const e of items) heap.schedule(e, rnd());
  for (let i = 0; i < 300; i++) heap.schedule(items[i * 7 % 500], rnd()); // reschedule up and down
  const removed = new Set<number>();
  for (let i = 0; i < 500; i += 5) {
    heap.remove(items[i]);
    removed.add(i);
    assert.equal(items[i].heapIndex, -1);
  }
  assert.equal(heap.size, 400);
  let last = -Infinity;
  let n = 0;
  let e: E | undefined;
  while ((e = heap.popExpired(Infinity)) !== undefined) {
    assert.ok(e.deadline >= last, 'heap order');
    assert.ok(!removed.has(e.id));
    last = e.deadline;
    n++;
  }
  assert.equal(n, 400);
});

test('popExpired stops at the first future deadline', () => {
  const heap = new TimerHeap<E>();
  const [a, b, c] = [entry(1), entry(2), entry(3)];
  heap.schedule(a, 10);
  heap.schedule(b, 20);
  heap.schedule(c, 30);
  assert.equal(heap.popExpired(15)?.id, 1);
  assert.equal(heap.popExpired(15), undefined);
  heap.schedule(c, 5);
  assert.equal(heap.popExpired(15)?.id, 3);
  assert.equal(heap.peek()?.id, 2);
});

test('the driver fires each entry once at its deadline with a single timer', async () => {
  const fired: number[] = [];
  let after = 0;
  const driver = new TimerDriver<E>((e) => fired.push(e.id), () => after++);
  const now = performance.now();
  const es = [entry(1), entry(2), entry(3)];
  driver.heap.schedule(es[0], now + 30);
  driver.heap.schedule(es[1], now + 10);
  driver.heap.schedule(es[2], now + 1000);
  driver.rearm();
  driver.heap.remove(es[2]);
  driver.rearm();
  await new Promise((r) => setTimeout(r, 80));
  assert.deepEqual(fired, [2, 1]);
  assert.ok(after >= 1);
  driver.stop();
});
