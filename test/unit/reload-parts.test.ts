// The parts a configuration reload is made of, in memory: backend slots stable by id, what needs a restart,
// the request/reply helper, backend pools kept across generations, a pipeline that says when it drained,
// and every backend-indexed structure agreeing on slots (balancer, shared state, session table).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { tmpdir } from 'node:os';
import pino from 'pino';
import { validateConfig } from '../../src/config/load.ts';
import type { Config } from '../../src/config/types.ts';
import { changedSettings, effectiveConfig, restartOnlyChanges } from '../../src/config/reloadable.ts';
import { BackendSlots } from '../../src/primary/backend-slots.ts';
import { PendingReplies } from '../../src/shared/replies.ts';
import { BackendPools } from '../../src/proxy/pools.ts';
import { backendsFromConfig } from '../../src/balancer/backend.ts';
import { Balancer } from '../../src/balancer/balancer.ts';
import { SessionTable } from '../../src/balancer/session-table.ts';
import { parseCookies, affinityToken } from '../../src/balancer/affinity.ts';
import { Pipeline } from '../../src/pipeline/pipeline.ts';
import { SharedState, BC_REQUESTS, B_ACTIVE, SLOT_LIVE, SLOT_RETIRING, slotSpan } from '../../src/shared/state.ts';
import { LatencyRecorder } from '../../src/admin/latency.ts';
import { memoryExchange } from '../support/memory-exchange.ts';

const logger = pino({ level: 'silent' });

function config(ids: string[], extra: Record<string, unknown> = {}): Config {
  return validateConfig({
    ...extra,
    loadBalancer: {
      ...((extra.loadBalancer as object | undefined) ?? {}),
      backendServers: ids.map((id, i) => ({ id, host: '127.0.0.1', port: 9000 + i })),
    },
  });
}

test('backend slots: kept ids keep theirs, new ids take free ones, removed ones retire until released', () => {
  const start = config(['a', 'b', 'c']).loadBalancer.backendServers;
  const slots = new BackendSlots(start, 5);
  assert.deepEqual(slots.slotsOf(start), [0, 1, 2]);

  const next = config(['c', 'd', 'a']).loadBalancer.backendServers;
  const plan = slots.plan(next);
  assert.deepEqual(plan.slots, [2, 3, 0], 'reordering keeps the slots; d takes the first free one');
  assert.deepEqual(plan.fresh, [3]);
  assert.deepEqual(plan.added, ['d']);
  assert.deepEqual(plan.kept, ['c', 'a']);
  assert.deepEqual(plan.removed, [{ id: 'b', slot: 1 }]);
  slots.commit(plan, next, 2);
  assert.deepEqual(slots.retired(), [{ slot: 1, id: 'b', generation: 2 }]);

  // b's slot is still retiring: e and f get the other free slots, g finds none.
  const more = config(['c', 'd', 'a', 'e']).loadBalancer.backendServers;
  assert.deepEqual(slots.plan(more).slots, [2, 3, 0, 4]);
  const tooMany = config(['c', 'd', 'a', 'e', 'f']).loadBalancer.backendServers;
  assert.throws(() => slots.plan(tooMany), (err: { code?: string; path?: string; message: string }) => {
    assert.equal(err.code, 'QUICLB_CONFIG');
    assert.equal(err.path, 'loadBalancer.backendServers');
    assert.match(err.message, /no free slot for new backend "f".*1 by removed ones that still finish their requests/);
    return true;
  });
  // Once b's requests ended its slot is free again, reused after the ones freed earlier.
  slots.release(1);
  assert.deepEqual(slots.plan(tooMany).slots, [2, 3, 0, 4, 1]);
  // A re-added id is a new backend: a fresh slot, not its old one.
  const back = config(['c', 'd', 'a', 'b']).loadBalancer.backendServers;
  assert.deepEqual(slots.plan(back).fresh, [4]);
});

test('needs restart: ports, bind address, frontend limits; everything else is applied', () => {
  const running = config(['a'], { server: { httpPort: 8080 } });
  const next = config(['a', 'b'], {
    server: { httpPort: 8081, readTimeout: '5s', maxBodySize: '1MiB' },
    logging: { level: 'debug', format: 'pretty' },
    loadBalancer: { strategy: 'ip_hash' },
    quic: { idleTimeout: '20s', maxUdpPayloadSize: 1400 },
  });
  assert.deepEqual(restartOnlyChanges(running, next), [
    'server.httpPort',
    'quic.maxUdpPayloadSize',
    'server.readTimeout',
    'logging.format',
  ]);
  const eff = effectiveConfig(running, next);
  assert.equal(eff.server.httpPort, 8080, 'a restart-only setting keeps its running value');
  assert.equal(eff.server.readTimeoutMs, running.server.readTimeoutMs);
  assert.equal(eff.logging.format, 'json');
  assert.equal(eff.quic.maxUdpPayloadSize, running.quic.maxUdpPayloadSize);
  assert.equal(eff.server.maxBodySize, 1024 * 1024, 'the rest is the new file');
  assert.equal(eff.logging.level, 'debug');
  assert.equal(eff.quic.idleTimeoutMs, 20_000);
  assert.equal(eff.loadBalancer.backendServers.length, 2);
  assert.equal(next.server.httpPort, 8081, 'the loaded config itself is not changed');
  assert.deepEqual(changedSettings(running, eff), ['server.maxBodySize', 'quic.idleTimeout', 'loadBalancer.strategy', 'logging.level']);
  assert.deepEqual(restartOnlyChanges(running, eff), []);
});

test('tls.keyRing applies live: a reload reads the key ring at the path the new file names', () => {
  const running = config(['a'], { tls: { keyRing: '/srv/quiclb/keyring' } });
  const next = config(['a'], { tls: { keyRing: '/srv/quiclb/keyring-2' } });
  assert.deepEqual(restartOnlyChanges(running, next), []);
  assert.equal(effectiveConfig(running, next).tls.keyRing, '/srv/quiclb/keyring-2');
  assert.deepEqual(changedSettings(running, effectiveConfig(running, next)), ['tls.keyRing']);
  // tls.stateDir (the generated certificate, and the key ring when tls.keyRing is unset) still needs a restart.
  const moved = config(['a'], { tls: { stateDir: '/var/lib/other' } });
  assert.deepEqual(restartOnlyChanges(config(['a']), moved), ['tls.stateDir']);
});

test('needs restart: turning the response cache on or off, or moving its store; its size bounds apply live', () => {
  const running = config(['a']);
  const next = config(['a'], { cache: { enabled: true, maxSize: '64MiB' } });
  assert.deepEqual(restartOnlyChanges(running, next), ['cache.enabled']);
  const eff = effectiveConfig(running, next);
  assert.equal(eff.cache.enabled, false);
  assert.equal(eff.cache.maxSize, 64 * 1024 * 1024);
  assert.deepEqual(restartOnlyChanges(running, config(['a'], { moodle: { enableCaching: true } })), ['moodle.enableCaching']);
});

test('PendingReplies: a reply settles its request, a silent peer times out, a refused send settles at once', async () => {
  const replies = new PendingReplies<string>();
  const sent: number[] = [];
  const answered = replies.request((id) => (sent.push(id), true), 1000, () => 'timeout');
  const silent = replies.request((id) => (sent.push(id), true), 20, () => 'timeout');
  const refused = replies.request(() => false, 1000, () => 'gone');
  assert.equal(replies.settle(sent[0], 'pong'), true);
  assert.equal(await answered, 'pong');
  assert.equal(await silent, 'timeout');
  assert.equal(await refused, 'gone');
  assert.equal(replies.settle(sent[1], 'late'), false, 'a late reply finds nobody waiting');
  assert.equal(replies.size, 0);
});

const ctx = { shards: 1, logger: pino({ level: 'silent' }) };

test('backend pools: an unchanged backend keeps its pool across generations; a removed or moved one is closed when released', async () => {
  const pools = new BackendPools();
  const c1 = config(['a', 'b']);
  const gen1 = pools.lease(backendsFromConfig(c1.loadBalancer.backendServers), c1, ctx);
  const [a1, b1] = backendsFromConfig(c1.loadBalancer.backendServers);
  const poolA = gen1.upstream(a1);
  const poolB = gen1.upstream(b1);

  // Generation 2: a unchanged, b moved to another port (same id, same slot), c new in slot 2.
  const c2 = validateConfig({
    loadBalancer: {
      backendServers: [
        { id: 'a', host: '127.0.0.1', port: 9000 },
        { id: 'b', host: '127.0.0.1', port: 9100 },
        { id: 'c', host: '127.0.0.1', port: 9200 },
      ],
    },
  });
  const backends2 = backendsFromConfig(c2.loadBalancer.backendServers);
  const gen2 = pools.lease(backends2, c2, ctx);
  assert.equal(gen2.upstream(backends2[0]), poolA, 'a keeps its pool');
  assert.notEqual(gen2.upstream(backends2[1]), poolB, 'b at a new address gets a new pool');
  assert.equal(gen1.upstream(b1), poolB, 'the old generation keeps using its own');
  assert.equal(pools.size, 4);

  await gen1.release();
  assert.equal(pools.size, 3, 'b\'s old pool is closed');
  assert.equal(poolB.closed, true);
  assert.equal(poolA.closed, false);

  // A change of the pool settings (the connect timeout) replaces every pool.
  const c3 = validateConfig({ loadBalancer: { connectTimeout: '2s', backendServers: c2.loadBalancer.backendServers } });
  const gen3 = pools.lease(backends2, c3, ctx);
  assert.notEqual(gen3.upstream(backends2[0]), poolA);
  await gen2.release();
  assert.equal(poolA.closed, true);
  assert.throws(() => gen3.upstream({ ...backends2[0], index: 7 }), /no pool leased for backend a \(slot 7\)/);
  await pools.close();
});

test('backend pools are made on first use: a FastCGI backend on a unix socket (no host) leases without one', async () => {
  const pools = new BackendPools();
  const fpm = validateConfig({
    moodle: { wwwRoot: tmpdir() },
    loadBalancer: { backendServers: [{ id: 'fpm', protocol: 'fastcgi', socket: '/run/php/php-fpm.sock' }, { id: 'web', host: '127.0.0.1', port: 9000 }] },
  });
  const lease = pools.lease(backendsFromConfig(fpm.loadBalancer.backendServers), fpm, ctx);
  assert.equal(pools.size, 2);
  assert.ok(lease.upstream(backendsFromConfig(fpm.loadBalancer.backendServers)[1]));
  await lease.release();
  assert.equal(pools.size, 0);
});

test('a pipeline says when its last request ended (a replaced generation drains)', async () => {
  let release: (() => void) | undefined;
  const p = new Pipeline(
    [
      {
        name: 'held',
        request(ex) {
          return new Promise<boolean>((resolve) => {
            release = () => {
              ex.answer(200, 'ok');
              resolve(true);
            };
          });
        },
      },
    ],
    logger,
  );
  await p.drain(); // none running: at once
  const m = memoryExchange();
  p.handle(m.req, m.res);
  assert.equal(p.active, 1);
  let drained = false;
  const d = p.drain().then(() => (drained = true));
  await new Promise((r) => setTimeout(r, 20));
  assert.equal(drained, false);
  release!();
  await d;
  assert.equal(p.active, 0);
  assert.equal((await m.done).status, 200);
});

test('slots agree everywhere: balancer, shared state, session table and latency are indexed by slot, not position', () => {
  const state = new SharedState();
  const sessions = new SessionTable(undefined, 1024);
  const cfg = config(['b', 'c'], { loadBalancer: { sessionPersistence: true } });
  const slots = [1, 5];
  state.initBackend(1, true);
  state.initBackend(5, true);
  state.addBackendCounter(5, BC_REQUESTS, 3n);
  const balancer = new Balancer({ lb: cfg.loadBalancer, sessionCookie: 'MoodleSession', state, sessions, slots });
  assert.deepEqual(balancer.backends.map((b) => [b.id, b.index]), [['b', 1], ['c', 5]]);
  assert.equal(balancer.byIndex(5)?.id, 'c');
  assert.equal(balancer.byIndex(0), undefined);

  // The Moodle session table and the affinity cookie both lead to the backend in slot 5.
  sessions.remember('sid-1', 5);
  const bySession = balancer.select({ host: 'x', path: '/', clientIp: '192.0.2.1', cookies: parseCookies(['MoodleSession=sid-1']) });
  assert.equal(bySession?.backend.id, 'c');
  assert.equal(bySession?.reason, 'session');
  const byCookie = balancer.select({ host: 'x', path: '/', clientIp: '192.0.2.1', cookies: parseCookies([`QUICLB_AFFINITY=${affinityToken({ id: 'c' })}`]) });
  assert.equal(byCookie?.backend.index, 5);
  assert.equal(balancer.afterResponse(parseCookies([]), byCookie!.backend, []), `QUICLB_AFFINITY=${affinityToken({ id: 'c' })}; Path=/; HttpOnly; SameSite=Lax`);

  // Retiring slot 5 takes c out of rotation for every balancer at once; b keeps serving.
  state.setSlotState(5, SLOT_RETIRING);
  for (let i = 0; i < 4; i++) assert.equal(balancer.select({ host: 'x', path: '/', clientIp: '192.0.2.1', cookies: parseCookies([]) })?.backend.id, 'b');
  assert.equal(balancer.select({ host: 'x', path: '/', clientIp: '192.0.2.1', cookies: parseCookies(['MoodleSession=sid-1']) })?.backend.id, 'b');

  // Freeing the slot forgets its sessions; a new backend there starts from zero.
  assert.equal(sessions.forgetBackend(5), 1);
  assert.equal(sessions.lookup('sid-1'), undefined);
  state.addBackendGauge(5, B_ACTIVE, 2);
  state.initBackend(5, true);
  assert.equal(state.backendCounter(5, BC_REQUESTS), 0n);
  assert.equal(state.backendGauge(5, B_ACTIVE), 0);
  assert.equal(state.slotState(5), SLOT_LIVE);

  const latency = new LatencyRecorder();
  latency.record(5, 12);
  latency.reset(5);
  assert.deepEqual(latency.snapshot()[5], '');
  assert.equal(slotSpan(slots, 2), 6);
});
