// The access-log phase in a real pipeline, with a real pino logger whose lines the test reads: one line per
// request, written by its done hook once the request was answered (or failed), with what the other phases
// decided (status, backend, attempts, cache outcome); none at all with logging.accessLog off.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { validateConfig } from '../../src/config/load.ts';
import { accessLogPhase } from '../../src/pipeline/phases/access-log.ts';
import { adminPhase } from '../../src/pipeline/phases/admin.ts';
import { proxyPhase } from '../../src/pipeline/phases/proxy.ts';
import { ExchangeCache } from '../../src/pipeline/exchange-cache.ts';
import type { Phase } from '../../src/pipeline/phase.ts';
import { SharedState } from '../../src/shared/state.ts';
import { startOrigin } from '../support/origin.ts';
import { answering, capturingLogger, httpBackend, proxyRig, runPhases } from '../support/phase-rig.ts';

const origin = await startOrigin((_req, res) => res.end('moodle'));
after(() => origin.close());

const requestLines = (lines: Array<Record<string, unknown>>) => lines.filter((l) => l.msg === 'request');

test('access-log: off, there is no phase', () => {
  assert.equal(accessLogPhase(validateConfig({ logging: { accessLog: false } }), capturingLogger().logger), undefined);
});

test('access-log: one line after a proxied request, naming the backend, the attempts and the client', async () => {
  const { logger, lines } = capturingLogger();
  const port = Number(new URL(origin.url).port);
  const rig = proxyRig({ loadBalancer: { backendServers: [httpBackend('moodle-a', port)] } });
  try {
    const { r } = await runPhases([proxyPhase(rig.config, rig.forwarder), accessLogPhase(rig.config, logger)], { protocol: 'HTTP/2', method: 'GET', path: '/course/view.php?id=7', remoteAddress: '198.51.100.4' });
    assert.equal(r.body.toString(), 'moodle');
    const logged = requestLines(lines);
    assert.equal(logged.length, 1);
    const l = logged[0];
    assert.equal(l.level, 30, 'info');
    assert.deepEqual(
      { protocol: l.protocol, method: l.method, path: l.path, status: l.status, backend: l.backend, attempts: l.attempts, client: l.client },
      { protocol: 'HTTP/2', method: 'GET', path: '/course/view.php?id=7', status: 200, backend: 'moodle-a', attempts: 1, client: '198.51.100.4' },
    );
    assert.equal(typeof l.durationMs, 'number');
    assert.ok((l.durationMs as number) >= 0);
    assert.equal('cache' in l, false, 'no cache field when the cache never looked');
  } finally {
    await rig.close();
  }
});

test('access-log: quiclb\'s own answers: admin shows as quiclb-admin, a refusal has no backend, a failing phase logs 500', async () => {
  const { logger, lines } = capturingLogger();
  const config = validateConfig({});
  const log = accessLogPhase(config, logger);
  const admin = adminPhase({ config, state: new SharedState(), startedAt: Date.now(), workers: 1, collectLatency: async () => [] });
  await runPhases([admin, answering(), log], { path: '/api/test' });
  const refuse: Phase = {
    name: 'refuse',
    request(ex) {
      ex.answer(403, 'no');
      return true;
    },
  };
  await runPhases([refuse, log], { method: 'DELETE', path: '/x' });
  const broken: Phase = {
    name: 'broken',
    request() {
      throw new Error('a bug');
    },
  };
  await runPhases([broken, log], { path: '/y' });
  const logged = requestLines(lines);
  assert.deepEqual(
    logged.map((l) => [l.path, l.status, l.backend, l.attempts]),
    [
      ['/api/test', 200, 'quiclb-admin', undefined],
      ['/x', 403, undefined, undefined],
      ['/y', 500, undefined, undefined],
    ],
  );
});

test('access-log: written once the answer is complete, with the cache outcome when the cache took part', async () => {
  const { logger, lines } = capturingLogger();
  let finish!: () => void;
  const slow: Phase = {
    name: 'slow',
    async request(ex) {
      ex.cache = new ExchangeCache('hit');
      const sink = ex.respond(200, []);
      sink.write(Buffer.from('part'));
      await new Promise<void>((r) => (finish = r));
      sink.end();
      return true;
    },
  };
  const running = runPhases([slow, accessLogPhase(validateConfig({}), logger)], { path: '/pix/a.png' });
  await new Promise((r) => setImmediate(r));
  assert.equal(requestLines(lines).length, 0, 'nothing logged while the response is still going out');
  finish();
  await running;
  const logged = requestLines(lines);
  assert.equal(logged.length, 1);
  assert.equal(logged[0].cache, 'hit');
  assert.equal(logged[0].status, 200);
});
