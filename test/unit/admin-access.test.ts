import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isAdminAllowed, isAddressAllowed, tokensEqual } from '../../src/admin/access.ts';
import type { AdminConfig } from '../../src/config/types.ts';

const loopback: AdminConfig = { allowFrom: ['127.0.0.0/8', '::1/128'], port: 0 };

test('CIDR matrix: IPv4, IPv6, IPv4-mapped IPv6, bare addresses, garbage', () => {
  const cases: Array<[string, string[], boolean]> = [
    ['127.0.0.1', ['127.0.0.0/8'], true],
    ['127.255.1.2', ['127.0.0.0/8'], true],
    ['128.0.0.1', ['127.0.0.0/8'], false],
    ['::ffff:127.0.0.1', ['127.0.0.0/8'], true],
    ['::ffff:10.1.2.3', ['127.0.0.0/8'], false],
    ['::1', ['127.0.0.0/8'], false],
    ['::1', ['::1/128'], true],
    ['[::1]', ['::1/128'], true],
    ['fe80::1%eth0', ['fe80::/10'], true],
    ['2001:db8::5', ['2001:db8::/32'], true],
    ['2001:db9::5', ['2001:db8::/32'], false],
    ['10.0.0.7', ['10.0.0.7'], true],
    ['10.0.0.8', ['10.0.0.7'], false],
    ['192.168.1.9', ['::ffff:192.168.0.0/112'], true],
    ['192.168.1.9', [], false],
    ['not-an-ip', ['0.0.0.0/0'], false],
    ['', ['0.0.0.0/0'], false],
    ['8.8.8.8', ['0.0.0.0/0'], true],
    ['8.8.8.8', ['bogus/99', '8.8.8.0/24'], true],
  ];
  for (const [addr, allow, expected] of cases) assert.equal(isAddressAllowed(addr, allow), expected, `${addr} in ${allow.join(',')}`);
});

test('no token configured: the address alone decides', () => {
  assert.deepEqual(isAdminAllowed('127.0.0.1', undefined, loopback), { ok: true });
  const denied = isAdminAllowed('192.0.2.1', undefined, loopback);
  assert.equal(denied.ok, false);
  assert.equal(!denied.ok && denied.status, 403);
});

test('token configured: missing, wrong, wrong scheme and right', () => {
  const admin: AdminConfig = { ...loopback, token: 's3cret-token' };
  const missing = isAdminAllowed('127.0.0.1', undefined, admin);
  assert.equal(!missing.ok && missing.status, 401);
  const wrong = isAdminAllowed('127.0.0.1', 'Bearer s3cret-tokeN', admin);
  assert.equal(!wrong.ok && wrong.status, 401);
  const prefix = isAdminAllowed('127.0.0.1', 'Bearer s3cret', admin);
  assert.equal(!prefix.ok && prefix.status, 401);
  const basic = isAdminAllowed('127.0.0.1', 'Basic s3cret-token', admin);
  assert.equal(!basic.ok && basic.status, 401);
  assert.deepEqual(isAdminAllowed('127.0.0.1', 'Bearer s3cret-token', admin), { ok: true });
  assert.deepEqual(isAdminAllowed('::ffff:127.0.0.1', 'bearer s3cret-token', admin), { ok: true }, 'scheme is case-insensitive');
  // The address check comes first: a right token from outside is still 403.
  const outside = isAdminAllowed('203.0.113.9', 'Bearer s3cret-token', admin);
  assert.equal(!outside.ok && outside.status, 403);
});

test('tokensEqual compares content of any length', () => {
  assert.equal(tokensEqual('abc', 'abc'), true);
  assert.equal(tokensEqual('abc', 'abd'), false);
  assert.equal(tokensEqual('abc', 'abcd'), false);
  assert.equal(tokensEqual('', 'x'), false);
});
