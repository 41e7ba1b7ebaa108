import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ClientEventWindow } from '../../src/ratelimit/event-window.ts';

const W = 10_000;
const T0 = 1_700_000_000_000; // a multiple of W: windows start at T0, T0 + W, ...

function events(now: { t: number }) {
  return ClientEventWindow.create(1024, W, { now: () => now.t });
}

test('counts events per client within the window; IPv6 by /64', () => {
  const clock = { t: T0 };
  const ev = events(clock);
  for (let i = 1; i <= 50; i++) assert.equal(ev.record('203.0.113.7'), i);
  assert.equal(ev.record('203.0.113.7', 10), 60, 'n events at once');
  assert.equal(ev.record('203.0.113.8'), 1, 'another client');
  assert.equal(ev.record('2001:db8:1:2::1'), 1);
  assert.equal(ev.record('2001:db8:1:2::ffff'), 2, 'same /64');
  assert.equal(ev.count('203.0.113.7'), 60, 'count() records nothing');
  assert.equal(ev.count('198.51.100.1'), 0, 'unknown client');
  assert.equal(ev.record('not-an-ip'), 0);
});

test('the window slides: the previous window counts by how much of it still overlaps', () => {
  const clock = { t: T0 };
  const ev = events(clock);
  ev.record('192.0.2.1', 100);
  clock.t = T0 + W; // the next window just began: all of the previous one still overlaps
  assert.equal(ev.count('192.0.2.1'), 100);
  clock.t = T0 + W + W / 4;
  assert.equal(ev.record('192.0.2.1'), 1 + 75);
  clock.t = T0 + 2 * W - 1;
  assert.equal(ev.count('192.0.2.1'), 1, 'the previous window has all but slid out');
  clock.t = T0 + 2 * W + W / 2;
  assert.equal(ev.count('192.0.2.1'), 0, 'one event, half of it overlapping, rounds down');
  clock.t = T0 + 5 * W;
  assert.equal(ev.record('192.0.2.1'), 1, 'after an idle gap both windows are empty');
});

test('a clock that goes back keeps counting in the window already open', () => {
  const clock = { t: T0 + W };
  const ev = events(clock);
  ev.record('192.0.2.1', 5);
  clock.t = T0 + 10; // a whole window back
  assert.equal(ev.record('192.0.2.1'), 6);
});

test('attach() shares the counters and checks the buffer', () => {
  const clock = { t: T0 };
  const ev = events(clock);
  const other = ClientEventWindow.attach(ev.buffer, W, { now: () => clock.t });
  ev.record('192.0.2.1', 3);
  assert.equal(other.record('192.0.2.1'), 4);
  assert.throws(() => ClientEventWindow.attach(new SharedArrayBuffer(64), W), { code: 'QUICLB_CLIENT_TABLE_BUFFER' });
  assert.throws(() => ClientEventWindow.create(64, 0), { code: 'QUICLB_EVENT_WINDOW' });
});
