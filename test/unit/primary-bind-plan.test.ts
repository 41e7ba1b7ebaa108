import { test } from 'node:test';
import assert from 'node:assert/strict';
import { bindAddressList, planBinds, resolveBinds, formatHostPort } from '../../src/primary/bind-plan.ts';

test('the default "::" is one dual-stack socket', () => {
  assert.deepEqual(planBinds(['::']), [{ host: '::', family: 6, ipv6Only: false }]);
});

test('a list binds each address; "::" beside an IPv4 address is IPv6-only', () => {
  assert.deepEqual(planBinds(['0.0.0.0', '::']), [
    { host: '0.0.0.0', family: 4, ipv6Only: false },
    { host: '::', family: 6, ipv6Only: true },
  ]);
  assert.deepEqual(planBinds(['127.0.0.1', '::1']), [
    { host: '127.0.0.1', family: 4, ipv6Only: false },
    { host: '::1', family: 6, ipv6Only: true },
  ]);
  assert.deepEqual(planBinds(['localhost']), [{ host: 'localhost', family: 4, ipv6Only: false }]);
  assert.deepEqual(bindAddressList({ bindAddress: ['::1', '127.0.0.1', '::1'] }), ['::1', '127.0.0.1']);
  assert.deepEqual(bindAddressList({ bindAddress: '10.0.0.5' }), ['10.0.0.5']);
});

test('no IPv6 on the host: "::" falls back to 0.0.0.0, with a warning', async () => {
  const warnings: unknown[] = [];
  const logger = { warn: (...a: unknown[]) => warnings.push(a) } as never;
  assert.deepEqual(await resolveBinds(['::'], logger, async () => false), [{ host: '0.0.0.0', family: 4, ipv6Only: false }]);
  assert.equal(warnings.length, 1);
  assert.deepEqual(await resolveBinds(['0.0.0.0', '::'], undefined, async () => false), [{ host: '0.0.0.0', family: 4, ipv6Only: false }]);
  // With IPv6 (this host has it on loopback, as the integration tests need), nothing changes.
  assert.deepEqual(await resolveBinds(['::'], undefined, async () => true), [{ host: '::', family: 6, ipv6Only: false }]);
});

test('host:port for logs brackets IPv6', () => {
  assert.equal(formatHostPort('::', 9443), '[::]:9443');
  assert.equal(formatHostPort('127.0.0.1', 80), '127.0.0.1:80');
});
