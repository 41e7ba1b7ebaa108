import { test } from 'node:test';
import assert from 'node:assert/strict';
import { affinityToken, parseCookies, parseSetCookie, setCookieHeader } from '../../src/balancer/affinity.ts';

test('affinity token is stable, short, opaque and distinct per backend', () => {
  const a = affinityToken({ id: 'moodle-1' });
  assert.equal(a, affinityToken({ id: 'moodle-1' }));
  assert.match(a, /^[A-Za-z0-9_-]{16}$/);
  assert.notEqual(a, affinityToken({ id: 'moodle-2' }));
  assert.ok(!a.includes('moodle'));
});

test('Set-Cookie carries Secure only on TLS connections', () => {
  const b = { id: 'moodle-1' };
  const tok = affinityToken(b);
  assert.equal(setCookieHeader('QLB', b, false), `QLB=${tok}; Path=/; HttpOnly; SameSite=Lax`);
  assert.equal(setCookieHeader('QLB', b, true), `QLB=${tok}; Path=/; HttpOnly; SameSite=Lax; Secure`);
});

test('parseCookies: several fields, whitespace, quotes, junk, first occurrence wins', () => {
  const m = parseCookies(['a=1; b = 2 ;c="three"', 'junk; =novalue; a=ignored', 'MoodleSession=abc=def']);
  assert.equal(m.get('a'), '1');
  assert.equal(m.get('b'), '2');
  assert.equal(m.get('c'), 'three');
  assert.equal(m.get('MoodleSession'), 'abc=def');
  assert.equal(m.has('junk'), false);
  assert.equal(m.has(''), false);
  assert.equal(parseCookies([]).size, 0);
});

test('affinity cookie round trip: Set-Cookie value parses back to the token', () => {
  const b = { id: 'backend-x' };
  const header = setCookieHeader('QLB', b, true);
  const parsed = parseSetCookie(header);
  assert.deepEqual(parsed, { name: 'QLB', value: affinityToken(b), expired: false });
  // What the browser sends back on the next request:
  assert.equal(parseCookies([`other=1; ${parsed!.name}=${parsed!.value}`]).get('QLB'), affinityToken(b));
});

test('parseSetCookie recognises deletions', () => {
  const now = Date.parse('2025-01-01T00:00:00Z');
  assert.equal(parseSetCookie('MoodleSession=x; Max-Age=0; path=/', now)?.expired, true);
  assert.equal(parseSetCookie('MoodleSession=x; expires=Thu, 01 Jan 1970 00:00:00 GMT', now)?.expired, true);
  assert.equal(parseSetCookie('MoodleSession=x; expires=Thu, 01 Jan 1970 00:00:00 GMT; Max-Age=60', now)?.expired, false);
  assert.equal(parseSetCookie('MoodleSession=x; path=/; secure; HttpOnly', now)?.expired, false);
  assert.equal(parseSetCookie('no-equals-sign', now), undefined);
});
