import { test } from 'node:test';
import assert from 'node:assert/strict';
import { HealthStateMachine } from '../../src/health/state-machine.ts';
import { ExpectStatusError, parseExpectStatus } from '../../src/health/expect-status.ts';

test('goes down only after unhealthyThreshold consecutive failures', () => {
  const m = new HealthStateMachine(true, { healthyThreshold: 2, unhealthyThreshold: 3 });
  assert.equal(m.observe(false), undefined);
  assert.equal(m.observe(false), undefined);
  assert.equal(m.healthy, true);
  assert.equal(m.observe(false), 'down');
  assert.equal(m.healthy, false);
  assert.equal(m.observe(false), undefined, 'no second transition while already down');
});

test('a success breaks a failure streak', () => {
  const m = new HealthStateMachine(true, { healthyThreshold: 2, unhealthyThreshold: 3 });
  m.observe(false);
  m.observe(false);
  assert.equal(m.observe(true), undefined);
  assert.equal(m.consecutiveFailures, 0);
  assert.equal(m.observe(false), undefined);
  assert.equal(m.observe(false), undefined);
  assert.equal(m.healthy, true);
  assert.equal(m.observe(false), 'down');
});

test('comes back after healthyThreshold consecutive successes; a failure restarts the count', () => {
  const m = new HealthStateMachine(false, { healthyThreshold: 3, unhealthyThreshold: 1 });
  assert.equal(m.observe(true), undefined);
  assert.equal(m.observe(true), undefined);
  assert.equal(m.observe(false), undefined);
  assert.equal(m.consecutiveSuccesses, 0);
  assert.equal(m.observe(true), undefined);
  assert.equal(m.observe(true), undefined);
  assert.equal(m.observe(true), 'up');
  assert.equal(m.healthy, true);
  assert.equal(m.consecutiveSuccesses, 3);
});

test('threshold 1 flips on every change; thresholds below 1 act as 1', () => {
  const m = new HealthStateMachine(true, { healthyThreshold: 0, unhealthyThreshold: 1 });
  assert.equal(m.observe(false), 'down');
  assert.equal(m.observe(true), 'up');
});

test('reset adopts an external state with an empty streak', () => {
  const m = new HealthStateMachine(true, { healthyThreshold: 2, unhealthyThreshold: 2 });
  m.observe(true);
  m.reset(false);
  assert.equal(m.healthy, false);
  assert.equal(m.observe(true), undefined, 'needs the full healthyThreshold after a reset');
  assert.equal(m.observe(true), 'up');
});

test('enabled is independent of health', () => {
  const m = new HealthStateMachine(true, { healthyThreshold: 1, unhealthyThreshold: 1 });
  m.setEnabled(false);
  assert.equal(m.healthy, true);
  assert.equal(m.available, false);
  assert.equal(m.consecutiveFailures, 0);
  m.setEnabled(true);
  assert.equal(m.available, true);
});

test('expectStatus forms', () => {
  const c = parseExpectStatus('2xx');
  assert.equal(c(200), true);
  assert.equal(c(299), true);
  assert.equal(c(300), false);
  assert.equal(c(199), false);
  const exact = parseExpectStatus('200');
  assert.equal(exact(200), true);
  assert.equal(exact(204), false);
  const range = parseExpectStatus('200-399');
  assert.equal(range(302), true);
  assert.equal(range(400), false);
  const list = parseExpectStatus('204, 3xx');
  assert.equal(list(204), true);
  assert.equal(list(301), true);
  assert.equal(list(200), false);
  for (const bad of ['', 'ok', '2x', '399-200', '200,', '6xx']) {
    assert.throws(() => parseExpectStatus(bad), (e: unknown) => e instanceof ExpectStatusError && e.code === 'QUICLB_HEALTH_BAD_EXPECT_STATUS', bad);
  }
});
