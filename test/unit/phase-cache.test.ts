// The cache-lookup and cache-store phases in a real pipeline, in the order of src/pipeline/phases/index.ts
// (lookup, compression, store, affinity, proxy), over a real SQLite store in a temp directory and a node:http
// backend behind the real proxy phase:
//   - lookup: a miss goes on to the backend with a fill, a fresh entry is answered from the store (304 to
//     matching validators, HEAD from a stored GET), requests the cache does not handle bypass it, a stale entry
//     inside stale-while-revalidate is served while the backend revalidates it, and the done hook ends a fill
//     that nothing else ended;
//   - store: what the client gets is stored (nothing without the phase), the affinity cookie never is, and a
//     compressed copy of a stored identity body is kept as that coding's variant;
//   - proxy with a fill: the backend gets the entry's validators, its 304 serves the refreshed entry, and its
//     failure inside stale-if-error serves the stale one.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { brotliDecompressSync, gunzipSync } from 'node:zlib';
import { cacheLookupPhase } from '../../src/pipeline/phases/cache-lookup.ts';
import { cacheStorePhase } from '../../src/pipeline/phases/cache-store.ts';
import { compressionPhase } from '../../src/pipeline/phases/compression.ts';
import { affinityPhase } from '../../src/pipeline/phases/affinity.ts';
import { proxyPhase } from '../../src/pipeline/phases/proxy.ts';
import type { Phase } from '../../src/pipeline/phase.ts';
import type { ResponseCache } from '../../src/cache/cache.ts';
import { CC_RESPONSES } from '../../src/shared/state.ts';
import type { HeaderList } from '../../src/shared/http-types.ts';
import { openTestCache, sleep } from '../support/cache-fixtures.ts';
import { startOrigin } from '../support/origin.ts';
import { header } from '../support/memory-exchange.ts';
import { answering, headerValues, httpBackend, proxyRig, runPhases, silentLogger, startPhases, type ProxyRig } from '../support/phase-rig.ts';

const CSS = 'body { color: #123; margin: 0 }\n'.repeat(200);

// The backend's answer depends on the path's first segment; `n` counts requests for that exact path.
const origin = await startOrigin((req, res, n) => {
  const kind = (req.url ?? '').split('/')[1];
  switch (kind) {
    case 'fresh':
      res.writeHead(200, [['content-type', 'text/css'], ['cache-control', 'public, max-age=60'], ['etag', '"v1"']]);
      return void res.end(CSS);
    case 'slow':
      res.writeHead(200, [['content-type', 'text/plain'], ['cache-control', 'max-age=60']]);
      return void setTimeout(() => res.end('slow body'), 50);
    case 'stream':
      res.writeHead(200, [['content-type', 'text/plain'], ['cache-control', 'max-age=60']]);
      res.write('part one ');
      return void setTimeout(() => res.end('never seen'), 2000).unref();
    case 'swr':
      res.writeHead(200, [['content-type', 'text/plain'], ['cache-control', 'max-age=0, stale-while-revalidate=60'], ['etag', `"s${n}"`]]);
      return void res.end(`swr body ${n}`);
    case 'reval':
      if (req.headers['if-none-match'] === '"r1"') {
        res.writeHead(304, [['etag', '"r1"'], ['cache-control', 'max-age=0']]);
        return void res.end();
      }
      res.writeHead(200, [['content-type', 'text/plain'], ['cache-control', 'max-age=0'], ['etag', '"r1"']]);
      return void res.end('reval body');
    case 'sie':
      if (n > 1) {
        res.statusCode = 500;
        return void res.end('backend broke');
      }
      res.writeHead(200, [['content-type', 'text/plain'], ['cache-control', 'max-age=0, stale-if-error=60']]);
      return void res.end('sie body');
    default:
      res.writeHead(200, [['content-type', 'text/plain'], ['cache-control', 'no-store']]);
      return void res.end('not for the cache');
  }
});
after(() => origin.close());

let unique = 0;
/** A path of `kind` no other test uses (the origin counts per path). */
const fresh = (kind: string) => `/${kind}/${++unique}`;

interface Opts {
  store?: boolean;
  compression?: boolean;
  affinity?: boolean;
}

function setup(opts: Opts = {}, over: Parameters<typeof openTestCache>[0] = {}) {
  const { cache, shared } = openTestCache(over);
  const rig = proxyRig({
    loadBalancer: { backendServers: [httpBackend('moodle-a', Number(new URL(origin.url).port))] },
    compression: { enabled: true, encodings: ['br', 'gzip'], minSize: 10 },
  });
  return { cache, shared, rig, phases: phasesFor(rig, cache, opts) };
}

function phasesFor(rig: ProxyRig, cache: ResponseCache, opts: Opts): Array<Phase | undefined> {
  return [
    cacheLookupPhase(cache, rig.config, rig.forwarder, silentLogger),
    opts.compression ? compressionPhase(rig.config, rig.state) : undefined,
    cacheStorePhase(opts.store ?? true),
    opts.affinity ? affinityPhase(rig.balancer, true) : undefined,
    proxyPhase(rig.config, rig.forwarder),
  ];
}

const withHeaders = (...extra: HeaderList): HeaderList => [['host', 'moodle.example.edu'], ...extra];

test('cache-lookup: a miss goes to the backend; then the stored answer is served without it (304 to its validators, HEAD too)', async () => {
  const { rig, phases, shared } = setup();
  const path = fresh('fresh');
  try {
    const miss = await runPhases(phases, { path });
    assert.equal(miss.r.status, 200);
    assert.equal(miss.r.body.toString(), CSS);
    assert.equal(miss.ex.cache?.outcome, 'miss');
    assert.equal(miss.ex.backend?.id, 'moodle-a');

    const hit = await runPhases(phases, { path });
    assert.equal(hit.r.status, 200);
    assert.equal(hit.r.body.toString(), CSS);
    assert.equal(header(hit.r.headers, 'etag'), '"v1"');
    assert.match(header(hit.r.headers, 'age') ?? '', /^\d+$/);
    assert.equal(hit.ex.cache?.outcome, 'hit');
    assert.equal(hit.ex.backend, undefined, 'no backend was chosen');

    const notModified = await runPhases(phases, { path, headers: withHeaders(['if-none-match', '"v1"']) });
    assert.equal(notModified.r.status, 304);
    assert.equal(notModified.r.body.length, 0);
    assert.equal(notModified.ex.cache?.outcome, 'hit');

    const head = await runPhases(phases, { method: 'HEAD', path });
    assert.equal(head.r.status, 200);
    assert.equal(head.r.body.length, 0);
    assert.equal(header(head.r.headers, 'content-type'), 'text/css');
    assert.equal(head.ex.cache?.outcome, 'hit');

    assert.equal(origin.count(path), 1);
    assert.equal(shared.snapshot().hits, 3);
  } finally {
    await rig.close();
  }
});

test('cache-lookup: requests the cache does not handle bypass it (a body, Range, a WebSocket handshake never even looks)', async () => {
  const { rig, phases, shared } = setup();
  const path = fresh('fresh');
  try {
    const post = await runPhases(phases, { method: 'POST', path, bodyText: 'a=1' });
    assert.equal(post.ex.cache?.outcome, 'bypass');
    const range = await runPhases(phases, { path, headers: withHeaders(['range', 'bytes=0-9']) });
    assert.equal(range.ex.cache?.outcome, 'bypass');
    assert.equal(origin.count(path), 2, 'both went to the backend');
    assert.equal(shared.snapshot().stored, 0);
    const tunnel = answering('switched');
    const ws = await runPhases([phases[0], tunnel], { upgrade: 'websocket', path });
    assert.equal(ws.ex.cache, undefined);
    assert.equal(tunnel.reached.length, 1);
    assert.equal(shared.snapshot().bypass, 2, 'the handshake was never looked up');
  } finally {
    await rig.close();
  }
});

test('cache-lookup: a stale entry inside stale-while-revalidate is served at once while the backend revalidates it', async () => {
  const { rig, phases, shared } = setup();
  const path = fresh('swr');
  try {
    await runPhases(phases, { path });
    assert.equal(shared.snapshot().stored, 1);
    const stale = await runPhases(phases, { path });
    assert.equal(stale.r.body.toString(), 'swr body 1');
    assert.equal(stale.ex.cache?.outcome, 'stale');
    // The background request stores the backend's new answer.
    for (let i = 0; i < 200 && shared.snapshot().stored < 2; i++) await sleep(10);
    assert.equal(origin.count(path), 2);
    assert.equal(origin.requests.filter((r) => r.url === path).at(-1)?.headers['if-none-match'], '"s1"', 'revalidated with the entry\'s validator');
    const next = await runPhases(phases, { path });
    assert.equal(next.r.body.toString(), 'swr body 2');
  } finally {
    await rig.close();
  }
});

test('cache-lookup: its done hook ends a fill nothing else ended (quiclb answered after the miss), waking waiting requests', async () => {
  const { cache, shared } = openTestCache();
  const { rig } = setup();
  const refuse: Phase = {
    name: 'refuse',
    request(ex) {
      ex.answer(403, 'not you');
      return true;
    },
  };
  const phases = [cacheLookupPhase(cache, rig.config, rig.forwarder, silentLogger), cacheStorePhase(true), refuse];
  try {
    const path = fresh('fresh');
    const signal = shared.fillSignal();
    const first = await runPhases(phases, { path });
    assert.equal(first.r.status, 403);
    assert.equal(first.ex.cache?.outcome, 'miss');
    // A fill that ends bumps the signal requests for the same URL (in any shard) wait on; left open, they
    // would wait for cache.lockTimeout.
    assert.notEqual(shared.fillSignal(), signal, 'the fill was ended');
    const second = await runPhases(phases, { path });
    assert.equal(second.ex.cache?.outcome, 'miss');
    assert.equal(shared.snapshot().stored, 0, 'quiclb\'s own answer is never stored');
  } finally {
    await rig.close();
  }
});

test('cache-lookup: concurrent misses for one URL wait for the first one\'s fetch and are served from the store', async () => {
  const { rig, phases, shared } = setup();
  const path = fresh('slow');
  try {
    const [a, b, c] = await Promise.all([runPhases(phases, { path }), runPhases(phases, { path }), runPhases(phases, { path })]);
    assert.equal(origin.count(path), 1);
    assert.deepEqual([a, b, c].map((x) => x.ex.cache?.outcome).sort(), ['hit', 'hit', 'miss']);
    for (const x of [a, b, c]) assert.equal(x.r.body.toString(), 'slow body');
    assert.equal(shared.snapshot().coalesced, 2);
  } finally {
    await rig.close();
  }
});

test('cache-lookup: a client that leaves mid-body ends the fill; the partial answer is not stored', async () => {
  const { rig, phases, shared } = setup();
  const path = fresh('stream');
  try {
    const signal = shared.fillSignal();
    const { m, ran } = startPhases(phases, { path });
    while (m.recorded.status === 0) await sleep(5);
    m.clientLeaves();
    const { r, ex } = await ran;
    assert.equal(r.aborted, true);
    assert.equal(ex.status, 499);
    assert.notEqual(shared.fillSignal(), signal, 'the fill was ended');
    assert.equal(shared.snapshot().stored, 0);
  } finally {
    await rig.close();
  }
});

test('cache-store: without it nothing is stored; with it the backend answer is, and the uncacheable is not', async () => {
  const without = setup({ store: false });
  const path = fresh('fresh');
  try {
    await runPhases(without.phases, { path });
    const again = await runPhases(without.phases, { path });
    assert.equal(again.ex.cache?.outcome, 'miss');
    assert.equal(origin.count(path), 2);
    assert.equal(without.shared.snapshot().stored, 0);
  } finally {
    await without.rig.close();
  }
  const { rig, phases, shared } = setup();
  try {
    const stored = fresh('fresh');
    await runPhases(phases, { path: stored });
    assert.equal((await runPhases(phases, { path: stored })).ex.cache?.outcome, 'hit');
    const noStore = fresh('plain');
    await runPhases(phases, { path: noStore });
    assert.equal((await runPhases(phases, { path: noStore })).ex.cache?.outcome, 'miss');
    assert.deepEqual([shared.snapshot().stored, shared.snapshot().uncacheable], [1, 2]);
  } finally {
    await rig.close();
  }
});

test('cache-store: the affinity cookie goes to its client but is never stored, and does not stop the answer from being stored', async () => {
  const { rig, phases } = setup({ affinity: true });
  const path = fresh('fresh');
  try {
    const miss = await runPhases(phases, { path, scheme: 'https' });
    assert.match(headerValues(miss.r, 'set-cookie').join(), /^QUICLB_AFFINITY=/);
    const hit = await runPhases(phases, { path, scheme: 'https' });
    assert.equal(hit.ex.cache?.outcome, 'hit');
    assert.deepEqual(headerValues(hit.r, 'set-cookie'), []);
    assert.equal(origin.count(path), 1);
  } finally {
    await rig.close();
  }
});

test('cache-lookup + cache-store with compression: the backend runs once per URL; each coding is made once and stored', async () => {
  const { rig, phases } = setup({ compression: true });
  const path = fresh('fresh');
  const ae = (v: string) => ({ path, headers: withHeaders(['accept-encoding', v]) });
  const brMade = () => rig.state.compressionCounter('br', CC_RESPONSES);
  try {
    const gz = await runPhases(phases, ae('gzip'));
    assert.equal(header(gz.r.headers, 'content-encoding'), 'gzip');
    assert.equal(gunzipSync(gz.r.body).toString(), CSS);
    assert.equal(gz.ex.cache?.outcome, 'miss');

    // The identity body was stored beside the gzip copy the client got.
    const identity = await runPhases(phases, { path });
    assert.equal(identity.ex.cache?.outcome, 'hit');
    assert.equal(header(identity.r.headers, 'content-encoding'), undefined);
    assert.equal(identity.r.body.toString(), CSS);

    const br = await runPhases(phases, ae('br'));
    assert.equal(br.ex.cache?.outcome, 'hit');
    assert.equal(header(br.r.headers, 'content-encoding'), 'br');
    assert.equal(brotliDecompressSync(br.r.body).toString(), CSS);
    assert.equal(brMade(), 1n);

    const brAgain = await runPhases(phases, ae('br'));
    assert.equal(header(brAgain.r.headers, 'content-encoding'), 'br');
    assert.equal(brotliDecompressSync(brAgain.r.body).toString(), CSS);
    assert.equal(brMade(), 1n, 'the br variant came from the store, not from the encoder');
    assert.equal(origin.count(path), 1);
  } finally {
    await rig.close();
  }
});

test('proxy with a fill: the backend gets the entry\'s validators, not the client\'s; its 304 serves the refreshed entry', async () => {
  const { rig, phases } = setup();
  const path = fresh('reval');
  try {
    await runPhases(phases, { path });
    const { r, ex } = await runPhases(phases, { path, headers: withHeaders(['if-none-match', '"client-own"']) });
    const sent = origin.requests.filter((q) => q.url === path);
    assert.equal(sent.length, 2);
    assert.equal(sent[1].headers['if-none-match'], '"r1"');
    assert.equal(r.status, 200);
    assert.equal(r.body.toString(), 'reval body');
    assert.equal(ex.cache?.outcome, 'revalidated');
  } finally {
    await rig.close();
  }
});

test('proxy with a fill: a backend failure inside stale-if-error serves the stale entry instead of the 500', async () => {
  const { rig, phases } = setup();
  const path = fresh('sie');
  try {
    await runPhases(phases, { path });
    const { r, ex } = await runPhases(phases, { path });
    assert.equal(origin.count(path), 2);
    assert.equal(r.status, 200);
    assert.equal(r.body.toString(), 'sie body');
    assert.equal(ex.cache?.outcome, 'stale');
    assert.equal(ex.backend?.id, 'moodle-a');
  } finally {
    await rig.close();
  }
});
