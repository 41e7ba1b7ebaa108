// A phase taking a backend's response over (Phase.backendResponse, as X-Accel-Redirect does): the backend's
// head never reaches the client, the phase's answer passes the response filters, and a failing phase is the
// runner's 500, never an unhandled rejection.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import pino from 'pino';
import { Pipeline } from '../../src/pipeline/pipeline.ts';
import type { Phase } from '../../src/pipeline/phase.ts';
import { memoryExchange, header } from '../support/memory-exchange.ts';

const logger = pino({ level: 'silent' });

/** Stands in for the proxy phase: hands a backend head over, drops the body when taken over, awaits the takeover. */
function backend(headers: Array<[string, string]>, seen: { sink?: unknown }): Phase {
  return {
    name: 'proxy',
    async request(ex) {
      const sink = ex.respondFromBackend(200, [...headers]);
      seen.sink = sink;
      sink?.end(Buffer.from('backend body'));
      await ex.takeover;
      return true;
    },
  };
}

const takeOver: Phase = {
  name: 'take-over',
  backendResponse(ex, head) {
    if (!head.headers.some(([n]) => n === 'x-take')) return undefined;
    return (async () => {
      await new Promise((r) => setTimeout(r, 5));
      ex.respond(206, head.headers.filter(([n]) => n !== 'x-take')).end(Buffer.from('from the phase'));
    })();
  },
};

const stamp: Phase = {
  name: 'stamp',
  response(_ex, head) {
    head.headers.push(['x-filtered', 'yes']);
  },
};

test('a backend head the phase takes over: the phase answers through the response filters; the backend body goes nowhere', async () => {
  const seen: { sink?: unknown } = {};
  const m = memoryExchange();
  new Pipeline([stamp, takeOver, backend([['x-take', '1'], ['content-disposition', 'attachment']], seen)], logger).handle(m.req, m.res);
  const r = await m.done;
  assert.equal(seen.sink, null);
  assert.equal(r.status, 206);
  assert.equal(r.body.toString(), 'from the phase');
  assert.equal(header(r.headers, 'x-take'), undefined);
  assert.equal(header(r.headers, 'content-disposition'), 'attachment');
  assert.equal(header(r.headers, 'x-filtered'), 'yes');
});

test('a head no phase takes goes out as respond() sends it', async () => {
  const seen: { sink?: unknown } = {};
  const m = memoryExchange();
  new Pipeline([stamp, takeOver, backend([['content-type', 'text/plain']], seen)], logger).handle(m.req, m.res);
  const r = await m.done;
  assert.notEqual(seen.sink, null);
  assert.equal(r.status, 200);
  assert.equal(r.body.toString(), 'backend body');
  assert.equal(header(r.headers, 'x-filtered'), 'yes');
});

test('a taking phase that throws or rejects answers 500, with no unhandled rejection on the way', async () => {
  const unhandled: unknown[] = [];
  const onUnhandled = (err: unknown): void => void unhandled.push(err);
  process.on('unhandledRejection', onUnhandled);
  try {
    for (const failing of [
      () => {
        throw new Error('boom');
      },
      () => Promise.reject(new Error('boom')),
    ]) {
      const phase: Phase = { name: 'bad', backendResponse: failing as Phase['backendResponse'] };
      const slowBackend: Phase = {
        name: 'proxy',
        async request(ex) {
          const sink = ex.respondFromBackend(200, []);
          assert.equal(sink, null);
          // The backend body is still being read while the rejection is pending.
          await new Promise((r) => setTimeout(r, 20));
          await ex.takeover;
          return true;
        },
      };
      const m = memoryExchange();
      new Pipeline([phase, slowBackend], logger).handle(m.req, m.res);
      const r = await m.done;
      assert.equal(r.status, 500);
    }
    await new Promise((r) => setTimeout(r, 20));
    assert.deepEqual(unhandled, []);
  } finally {
    process.off('unhandledRejection', onUnhandled);
  }
});
