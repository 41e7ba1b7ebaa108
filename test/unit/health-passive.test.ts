import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Worker } from 'node:worker_threads';
import pino from 'pino';
import type { Config } from '../../src/config/types.ts';
import { PassiveRecovery, recordBackendResult } from '../../src/health/passive.ts';
import { B_HEALTHY, B_PASSIVE_FAILS, BC_HEALTH_TRANSITIONS, SharedState } from '../../src/shared/state.ts';

function captureLogger(): { logger: pino.Logger; lines: Array<{ level: number; msg: string; reason?: string }> } {
  const lines: Array<{ level: number; msg: string; reason?: string }> = [];
  return { logger: pino({ level: 'info' }, { write: (s: string) => lines.push(JSON.parse(s)) }), lines };
}

function configWith(backends: Array<{ healthy: boolean }>, threshold: number): Config {
  return {
    loadBalancer: { backendServers: backends.map((b, i) => ({ id: `b${i}`, host: '127.0.0.1', port: 1, weight: 1, healthy: b.healthy, maxConnections: 0, group: 'default' })) },
    healthCheck: { enabled: false, passiveFailureThreshold: threshold },
  } as unknown as Config;
}

test('failures below the threshold keep the backend up; a success resets the streak', () => {
  const state = new SharedState();
  state.initBackend(0, true);
  const { logger, lines } = captureLogger();
  recordBackendResult(state, 0, false, 3, logger, 'b0');
  recordBackendResult(state, 0, false, 3, logger, 'b0');
  assert.equal(state.backendGauge(0, B_PASSIVE_FAILS), 2);
  recordBackendResult(state, 0, true, 3, logger, 'b0');
  assert.equal(state.backendGauge(0, B_PASSIVE_FAILS), 0);
  recordBackendResult(state, 0, false, 3, logger, 'b0');
  recordBackendResult(state, 0, false, 3, logger, 'b0');
  assert.equal(state.backendGauge(0, B_HEALTHY), 1);
  recordBackendResult(state, 0, false, 3, logger, 'b0');
  assert.equal(state.backendGauge(0, B_HEALTHY), 0);
  assert.equal(state.backendCounter(0, BC_HEALTH_TRANSITIONS), 1n);
  recordBackendResult(state, 0, false, 3, logger, 'b0');
  assert.equal(state.backendCounter(0, BC_HEALTH_TRANSITIONS), 1n, 'already down: no second transition');
  const downs = lines.filter((l) => l.msg === 'backend marked down');
  assert.equal(downs.length, 1);
  assert.equal(downs[0].level, 40);
  assert.equal(downs[0].reason, 'passive');
});

test('threshold 0 disables passive marking', () => {
  const state = new SharedState();
  state.initBackend(0, true);
  const { logger } = captureLogger();
  for (let i = 0; i < 10; i++) recordBackendResult(state, 0, false, 0, logger, 'b0');
  assert.equal(state.backendGauge(0, B_HEALTHY), 1);
});

test('many threads crossing the threshold at once produce exactly one transition and one log line', async () => {
  const state = new SharedState();
  state.initBackend(0, true);
  const barrier = new Int32Array(new SharedArrayBuffer(4));
  const passiveUrl = new URL('../../src/health/passive.ts', import.meta.url).href;
  const stateUrl = new URL('../../src/shared/state.ts', import.meta.url).href;
  const code = `
    const { parentPort, workerData } = require('node:worker_threads');
    (async () => {
      const { recordBackendResult } = await import(workerData.passiveUrl);
      const { SharedState } = await import(workerData.stateUrl);
      const state = new SharedState(workerData.buffer);
      let logged = 0;
      const logger = { warn: () => { logged++; } };
      Atomics.add(workerData.barrier, 0, 1);
      while (Atomics.load(workerData.barrier, 0) < workerData.workers) {}
      for (let i = 0; i < 200; i++) recordBackendResult(state, 0, false, 50, logger, 'b0');
      parentPort.postMessage(logged);
    })();
  `;
  const workers = 4;
  const results = await Promise.all(
    Array.from({ length: workers }, () => {
      const w = new Worker(code, { eval: true, workerData: { buffer: state.buffer, barrier, passiveUrl, stateUrl, workers } });
      return new Promise<number>((resolve, reject) => {
        w.once('message', (n: number) => {
          resolve(n);
          void w.terminate();
        });
        w.once('error', reject);
      });
    }),
  );
  assert.equal(results.reduce((a, b) => a + b, 0), 1, 'one thread logged');
  assert.equal(state.backendCounter(0, BC_HEALTH_TRANSITIONS), 1n);
  assert.equal(state.backendGauge(0, B_HEALTHY), 0);
  assert.equal(state.backendGauge(0, B_PASSIVE_FAILS), workers * 200);
});

test('PassiveRecovery re-admits a passively downed backend after the cool-down, half-open', () => {
  const config = configWith([{ healthy: true }, { healthy: false }], 3);
  const state = new SharedState();
  state.initBackend(0, true);
  state.initBackend(1, false);
  const { logger, lines } = captureLogger();
  for (let i = 0; i < 3; i++) recordBackendResult(state, 0, false, 3, logger, 'b0');
  assert.equal(state.backendGauge(0, B_HEALTHY), 0);
  const rec = new PassiveRecovery({ config, state, logger, cooldownMs: 1000 });
  assert.deepEqual(rec.tick(0), [], 'first sight starts the cool-down');
  assert.deepEqual(rec.tick(999), []);
  assert.deepEqual(rec.tick(1000), [0], 'configured-down backend 1 stays down');
  assert.equal(state.backendGauge(0, B_HEALTHY), 1);
  assert.equal(state.backendGauge(1, B_HEALTHY), 0);
  assert.equal(state.backendGauge(0, B_PASSIVE_FAILS), 2, 'one failure short of tripping again');
  assert.equal(lines.filter((l) => l.msg === 'backend marked up').length, 1);
  // The trial request fails: down again at once, another cool-down follows.
  recordBackendResult(state, 0, false, 3, logger, 'b0');
  assert.equal(state.backendGauge(0, B_HEALTHY), 0);
  assert.deepEqual(rec.tick(1100), []);
  assert.deepEqual(rec.tick(2099), []);
  assert.deepEqual(rec.tick(2100), [0]);
  // The trial succeeds: the streak clears and it stays up through a later single failure.
  recordBackendResult(state, 0, true, 3, logger, 'b0');
  recordBackendResult(state, 0, false, 3, logger, 'b0');
  assert.equal(state.backendGauge(0, B_HEALTHY), 1);
  assert.equal(state.backendCounter(0, BC_HEALTH_TRANSITIONS), 4n);
});

test('PassiveRecovery runs on its own timer once started', async () => {
  const config = configWith([{ healthy: true }], 1);
  const state = new SharedState();
  state.initBackend(0, true);
  const { logger } = captureLogger();
  recordBackendResult(state, 0, false, 1, logger, 'b0');
  const rec = new PassiveRecovery({ config, state, logger, cooldownMs: 40 });
  rec.start();
  try {
    const deadline = Date.now() + 2000;
    while (state.backendGauge(0, B_HEALTHY) === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
    assert.equal(state.backendGauge(0, B_HEALTHY), 1);
  } finally {
    rec.stop();
  }
});
