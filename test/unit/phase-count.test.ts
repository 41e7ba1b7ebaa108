// The count phase in a real pipeline: every request is counted once, by protocol (global counters) and by
// the shard that handled it, whether or not a later phase refuses it; it never answers.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { countPhase } from '../../src/pipeline/phases/count.ts';
import { G_REQ_HTTP1, G_REQ_HTTP2, G_REQ_HTTP3, SC_REQUESTS, SharedState } from '../../src/shared/state.ts';
import type { Protocol } from '../../src/shared/http-types.ts';
import type { Phase } from '../../src/pipeline/phase.ts';
import { answering, runPhases } from '../support/phase-rig.ts';

test('count: one count per request by protocol and by shard; the request goes on to the next phase', async () => {
  const state = new SharedState();
  const count = countPhase(state, 2);
  const backend = answering('counted');
  const sent: Protocol[] = ['HTTP/1.1', 'HTTP/2', 'HTTP/2', 'HTTP/3', 'HTTP/3', 'HTTP/3'];
  for (const protocol of sent) {
    const { r } = await runPhases([count, backend], { protocol });
    assert.equal(r.status, 200);
    assert.equal(r.body.toString(), 'counted');
  }
  assert.equal(backend.reached.length, sent.length, 'every request passed on');
  assert.equal(state.globalCounter(G_REQ_HTTP1), 1n);
  assert.equal(state.globalCounter(G_REQ_HTTP2), 2n);
  assert.equal(state.globalCounter(G_REQ_HTTP3), 3n);
  assert.equal(state.shardCounter(2, SC_REQUESTS), 6n);
  assert.equal(state.shardCounter(0, SC_REQUESTS), 0n, 'only the phase\'s own shard is counted');
});

test('count: a request a later phase refuses is counted too (count runs first)', async () => {
  const state = new SharedState();
  const refuse: Phase = {
    name: 'refuse',
    request(ex) {
      ex.answer(403, 'no');
      return true;
    },
  };
  const { r } = await runPhases([countPhase(state, 0), refuse], { protocol: 'HTTP/2' });
  assert.equal(r.status, 403);
  assert.equal(state.globalCounter(G_REQ_HTTP2), 1n);
  assert.equal(state.shardCounter(0, SC_REQUESTS), 1n);
});
