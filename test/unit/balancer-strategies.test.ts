import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SharedState, B_ACTIVE, B_HEALTHY, B_ENABLED } from '../../src/shared/state.ts';
import type { BackendConfig } from '../../src/config/types.ts';
import { type Backend, backendsFromConfig } from '../../src/balancer/backend.ts';
import { createStrategy } from '../../src/balancer/create-strategy.ts';
import { hash64 } from '../../src/balancer/hash.ts';
import { rng } from '../support/seeded-random.ts';

function cfg(id: string, extra: Partial<BackendConfig> = {}): BackendConfig {
  return { id, protocol: 'http', host: '127.0.0.1', port: 8000, weight: 1, healthy: true, maxConnections: 0, group: 'default', ...extra };
}

function setup(configs: BackendConfig[]): { backends: Backend[]; state: SharedState } {
  const state = new SharedState();
  configs.forEach((c, i) => state.initBackend(i, c.healthy));
  return { backends: backendsFromConfig(configs), state };
}

function countPicks(pick: () => Backend | undefined, n: number): Map<string, number> {
  const counts = new Map<string, number>();
  for (let i = 0; i < n; i++) {
    const b = pick();
    assert.ok(b);
    counts.set(b.id, (counts.get(b.id) ?? 0) + 1);
  }
  return counts;
}


function randomIps(n: number, seed: number): string[] {
  const r = rng(seed);
  const out: string[] = [];
  for (let i = 0; i < n; i++) {
    out.push([0, 0, 0, 0].map(() => Math.floor(r() * 256)).join('.'));
  }
  return out;
}

test('round robin spreads evenly and in order', () => {
  const { backends, state } = setup([cfg('a'), cfg('b'), cfg('c')]);
  const rr = createStrategy('round_robin', backends, state);
  const seq = Array.from({ length: 6 }, () => rr.pick({ clientIp: '127.0.0.1' })?.id);
  assert.deepEqual(seq, ['a', 'b', 'c', 'a', 'b', 'c']);
  const counts = countPicks(() => rr.pick({ clientIp: '127.0.0.1' }), 300);
  assert.deepEqual([...counts.values()], [100, 100, 100]);
});

test('weighted 5:1:1 gives exactly that ratio over 700 picks and is smooth', () => {
  const { backends, state } = setup([cfg('a', { weight: 5 }), cfg('b'), cfg('c')]);
  const w = createStrategy('weighted', backends, state);
  const seq: string[] = [];
  for (let i = 0; i < 700; i++) seq.push(w.pick({ clientIp: '127.0.0.1' })!.id);
  const count = (id: string) => seq.filter((x) => x === id).length;
  assert.equal(count('a'), 500);
  assert.equal(count('b'), 100);
  assert.equal(count('c'), 100);
  // Naive WRR starts a,a,a,a,a; nginx's smooth WRR interleaves: a a b a c a a.
  assert.deepEqual(seq.slice(0, 7), ['a', 'a', 'b', 'a', 'c', 'a', 'a']);
  let run = 0;
  let maxRun = 0;
  for (const id of seq) {
    run = id === 'a' ? run + 1 : 0;
    maxRun = Math.max(maxRun, run);
  }
  assert.ok(maxRun < 5, `heavy backend picked ${maxRun} times in a row`);
});

test('weighted skips a down backend and redistributes by weight', () => {
  const { backends, state } = setup([cfg('a', { weight: 3 }), cfg('b', { weight: 1 }), cfg('c', { weight: 2 })]);
  state.setBackendGauge(2, B_HEALTHY, 0);
  const w = createStrategy('weighted', backends, state);
  const counts = countPicks(() => w.pick({ clientIp: 'x' }), 400);
  assert.equal(counts.get('a'), 300);
  assert.equal(counts.get('b'), 100);
  assert.equal(counts.get('c'), undefined);
});

test('least connections picks the backend with the fewest active requests', () => {
  const { backends, state } = setup([cfg('a'), cfg('b'), cfg('c')]);
  state.addBackendGauge(0, B_ACTIVE, 5);
  state.addBackendGauge(1, B_ACTIVE, 2);
  state.addBackendGauge(2, B_ACTIVE, 7);
  const lc = createStrategy('least_connections', backends, state);
  for (let i = 0; i < 5; i++) assert.equal(lc.pick({ clientIp: 'x' })?.id, 'b');
  state.addBackendGauge(1, B_ACTIVE, 10); // b now 12
  assert.equal(lc.pick({ clientIp: 'x' })?.id, 'a');
});

test('least connections rotates among equally loaded backends', () => {
  const { backends, state } = setup([cfg('a'), cfg('b'), cfg('c'), cfg('d')]);
  state.addBackendGauge(0, B_ACTIVE, 3);
  const lc = createStrategy('least_connections', backends, state);
  const counts = countPicks(() => lc.pick({ clientIp: 'x' }), 300);
  assert.equal(counts.get('a'), undefined);
  assert.deepEqual([counts.get('b'), counts.get('c'), counts.get('d')], [100, 100, 100]);
});

test('least connections divides by weight', () => {
  const { backends, state } = setup([cfg('a', { weight: 4 }), cfg('b', { weight: 1 })]);
  state.addBackendGauge(0, B_ACTIVE, 6); // 6/4 = 1.5
  state.addBackendGauge(1, B_ACTIVE, 2); // 2/1 = 2
  const lc = createStrategy('least_connections', backends, state);
  assert.equal(lc.pick({ clientIp: 'x' })?.id, 'a');
});

test('ip_hash is stable per client IP and IPv4-mapped addresses hash like IPv4', () => {
  const { backends, state } = setup([cfg('a'), cfg('b'), cfg('c'), cfg('d')]);
  const h1 = createStrategy('ip_hash', backends, state);
  const h2 = createStrategy('ip_hash', backends, state); // another thread builds the same ring
  for (const ip of randomIps(200, 7)) {
    const first = h1.pick({ clientIp: ip })?.id;
    assert.equal(h1.pick({ clientIp: ip })?.id, first);
    assert.equal(h2.pick({ clientIp: ip })?.id, first);
    assert.equal(h1.pick({ clientIp: `::ffff:${ip}` })?.id, first);
  }
});

test('ip_hash spreads 10,000 random IPs within ±25% of fair over 4 backends', () => {
  const { backends, state } = setup([cfg('a'), cfg('b'), cfg('c'), cfg('d')]);
  const h = createStrategy('ip_hash', backends, state);
  const ips = randomIps(10_000, 42);
  const counts = new Map<string, number>();
  for (const ip of ips) {
    const id = h.pick({ clientIp: ip })!.id;
    counts.set(id, (counts.get(id) ?? 0) + 1);
  }
  assert.equal(counts.size, 4);
  for (const [id, n] of counts) assert.ok(n >= 1875 && n <= 3125, `backend ${id} got ${n} of 10000`);
});

test('ip_hash: adding a 5th backend moves 10-30% of clients, all to the new backend', () => {
  const four = setup([cfg('a'), cfg('b'), cfg('c'), cfg('d')]);
  const five = setup([cfg('a'), cfg('b'), cfg('c'), cfg('d'), cfg('e')]);
  const before = createStrategy('ip_hash', four.backends, four.state);
  const after = createStrategy('ip_hash', five.backends, five.state);
  let moved = 0;
  for (const ip of randomIps(10_000, 99)) {
    const x = before.pick({ clientIp: ip })!.id;
    const y = after.pick({ clientIp: ip })!.id;
    if (x !== y) {
      moved++;
      assert.equal(y, 'e', `${ip} moved from ${x} to ${y}, not to the new backend`);
    }
  }
  assert.ok(moved >= 1000 && moved <= 3000, `moved ${moved} of 10000`);
});

test('ip_hash: an unavailable owner falls through to other backends, and only its clients move', () => {
  const { backends, state } = setup([cfg('a'), cfg('b'), cfg('c'), cfg('d')]);
  const h = createStrategy('ip_hash', backends, state);
  const ips = randomIps(2000, 5);
  const before = ips.map((ip) => h.pick({ clientIp: ip })!.id);
  state.setBackendGauge(1, B_HEALTHY, 0);
  const landed = new Set<string>();
  ips.forEach((ip, i) => {
    const now = h.pick({ clientIp: ip })!.id;
    if (before[i] === 'b') {
      assert.notEqual(now, 'b');
      landed.add(now);
    } else {
      assert.equal(now, before[i]);
    }
  });
  // b's clients spread over its ring neighbours rather than all landing on one backend.
  assert.ok(landed.size >= 2, `b's clients all went to ${[...landed]}`);
});

for (const name of ['round_robin', 'weighted', 'least_connections', 'ip_hash'] as const) {
  test(`${name}: skips unavailable, drained, full and excluded backends; none left -> undefined`, () => {
    const { backends, state } = setup([cfg('a'), cfg('b', { maxConnections: 2 }), cfg('c'), cfg('d'), cfg('e', { healthy: false })]);
    const s = createStrategy(name, backends, state);
    state.setBackendGauge(0, B_HEALTHY, 0); // a: down
    state.addBackendGauge(1, B_ACTIVE, 2); // b: at its limit
    state.setBackendGauge(2, B_ENABLED, 0); // c: drained by an operator
    // e was configured unhealthy; only d remains.
    for (const ip of randomIps(50, 3)) assert.equal(s.pick({ clientIp: ip })?.id, 'd');
    assert.equal(s.pick({ clientIp: '10.0.0.1', exclude: new Set([3]) }), undefined);
    state.addBackendGauge(1, B_ACTIVE, -1); // b below its limit again
    assert.equal(s.pick({ clientIp: '10.0.0.1', exclude: new Set([3]) })?.id, 'b');
  });
}

test('createStrategy with no backends returns undefined picks', () => {
  const state = new SharedState();
  for (const name of ['round_robin', 'weighted', 'least_connections', 'ip_hash'] as const) {
    assert.equal(createStrategy(name, [], state).pick({ clientIp: '1.2.3.4' }), undefined);
  }
});

test('hash64 matches the FNV-1a 64-bit reference vectors', () => {
  const toHex = ([hi, lo]: [number, number]) => hi.toString(16).padStart(8, '0') + lo.toString(16).padStart(8, '0');
  assert.equal(toHex(hash64('')), 'cbf29ce484222325');
  assert.equal(toHex(hash64('a')), 'af63dc4c8601ec8c');
  assert.equal(toHex(hash64('foobar')), '85944171f73967e8');
});
