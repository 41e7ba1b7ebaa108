import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CidrList, parseIp } from '../../src/shared/cidr.ts';
import { forwardedForOf, resolveClientAddress, MAX_FORWARDED_HOPS } from '../../src/shared/client-address.ts';

test('parseIp: IPv4, IPv6 with brackets and zone, IPv4-mapped IPv6 as IPv4, garbage rejected', () => {
  assert.equal(parseIp('203.0.113.7')?.toString(), '203.0.113.7');
  assert.equal(parseIp('::ffff:203.0.113.7')?.toString(), '203.0.113.7');
  assert.equal(parseIp('::FFFF:203.0.113.7')?.kind(), 'ipv4');
  assert.equal(parseIp('::ffff:cb00:7107')?.toString(), '203.0.113.7', 'hex form of a mapped address');
  assert.equal(parseIp('[2001:db8::1]')?.toString(), '2001:db8::1');
  assert.equal(parseIp('fe80::1%eth0')?.kind(), 'ipv6');
  for (const bad of ['', 'unknown', '1.2.3', '1.2.3.4.5', '256.1.1.1', '01.2.3.4', '1.2.3.4 ', 'a.b.c.d', '2001:db8::zz', '::1::2', '_hidden']) {
    assert.equal(parseIp(bad), undefined, JSON.stringify(bad));
  }
});

test('CidrList matches by family, takes bare addresses, and IPv6 ranges over mapped space cover IPv4 clients', () => {
  const list = new CidrList(['10.0.0.0/8', '192.0.2.1', '2001:db8:1::/48', '::ffff:198.51.100.0/120']);
  assert.equal(list.size, 4);
  assert.ok(list.containsAddress('10.200.3.4'));
  assert.ok(list.containsAddress('::ffff:10.200.3.4'));
  assert.ok(list.containsAddress('192.0.2.1'));
  assert.ok(!list.containsAddress('192.0.2.2'));
  assert.ok(list.containsAddress('2001:db8:1:ffff::9'));
  assert.ok(!list.containsAddress('2001:db8:2::9'));
  assert.ok(list.containsAddress('198.51.100.77'), '::ffff:198.51.100.0/120 is 198.51.100.0/24');
  assert.ok(!list.containsAddress('198.51.101.1'));
  assert.ok(!list.containsAddress('not an ip'));
  assert.ok(new CidrList(['::/0']).containsAddress('8.8.8.8'), '::/0 covers IPv4 too');
  assert.ok(!new CidrList(['2001:db8::/32']).containsAddress('8.8.8.8'));
  assert.throws(() => new CidrList(['10.0.0.0/33']), { code: 'QUICLB_CIDR', message: /"10\.0\.0\.0\/33" is not a CIDR/ });
});

const CDN = new CidrList(['192.0.2.0/24', '2001:db8:cd::/48']);

test('X-Forwarded-For is ignored without trusted proxies: a client cannot pick its own address', () => {
  assert.equal(resolveClientAddress('203.0.113.7', '10.9.9.9', CidrList.EMPTY), '203.0.113.7');
  assert.equal(resolveClientAddress('::ffff:203.0.113.7', '10.9.9.9, 10.8.8.8', CidrList.EMPTY), '203.0.113.7');
  // With trusted proxies configured, a peer that is not one of them is still taken as the client.
  assert.equal(resolveClientAddress('203.0.113.7', '10.9.9.9', CDN), '203.0.113.7');
});

test('behind a trusted CDN hop the address it appended is the client, whatever the client wrote before it', () => {
  // The client wrote "10.9.9.9" itself (spoofed); the CDN appended the address it saw, 198.51.100.4.
  assert.equal(resolveClientAddress('192.0.2.10', '10.9.9.9, 198.51.100.4', CDN), '198.51.100.4');
  assert.equal(resolveClientAddress('::ffff:192.0.2.10', '198.51.100.4', CDN), '198.51.100.4');
  // Two trusted hops (CDN edge -> CDN shield -> quiclb): both skipped.
  assert.equal(resolveClientAddress('192.0.2.10', '10.9.9.9, 198.51.100.4, 192.0.2.77', CDN), '198.51.100.4');
  // IPv6 hops, bracketed with a port, and IPv4 with a port.
  assert.equal(resolveClientAddress('2001:db8:cd::1', '[2001:db8:aa::5]:51234, [2001:db8:cd::9]:443', CDN), '2001:db8:aa::5');
  assert.equal(resolveClientAddress('192.0.2.10', '198.51.100.4:5555', CDN), '198.51.100.4');
  assert.equal(resolveClientAddress('192.0.2.10', '::FFFF:198.51.100.4', CDN), '198.51.100.4');
  // Empty list elements mean nothing (RFC 9110 §5.6.1).
  assert.equal(resolveClientAddress('192.0.2.10', '198.51.100.4, , ', CDN), '198.51.100.4');
});

test('an all-trusted chain gives its leftmost address; no XFF gives the proxy itself', () => {
  assert.equal(resolveClientAddress('192.0.2.10', '192.0.2.5, 192.0.2.6', CDN), '192.0.2.5');
  assert.equal(resolveClientAddress('192.0.2.10', undefined, CDN), '192.0.2.10');
  assert.equal(resolveClientAddress('192.0.2.10', '', CDN), '192.0.2.10');
});

test('garbage in the chain stops the walk at the last trusted hop', () => {
  assert.equal(resolveClientAddress('192.0.2.10', '198.51.100.4, unknown', CDN), '192.0.2.10');
  assert.equal(resolveClientAddress('192.0.2.10', 'unknown, 192.0.2.7', CDN), '192.0.2.7');
});

test('the walk looks at most MAX_FORWARDED_HOPS entries', () => {
  const trusted = Array.from({ length: MAX_FORWARDED_HOPS + 5 }, (_, i) => `192.0.2.${i + 1}`);
  const chain = ['198.51.100.4', ...trusted].join(', ');
  assert.equal(resolveClientAddress('192.0.2.200', chain, CDN), `192.0.2.${trusted.length - MAX_FORWARDED_HOPS + 1}`);
});

test('forwardedForOf joins every x-forwarded-for field line in order', () => {
  assert.equal(forwardedForOf([['host', 'x'], ['x-forwarded-for', '1.1.1.1'], ['accept', '*/*'], ['x-forwarded-for', '2.2.2.2, 3.3.3.3']]), '1.1.1.1, 2.2.2.2, 3.3.3.3');
  assert.equal(forwardedForOf([['host', 'x']]), undefined);
});
