import { test } from 'node:test';
import assert from 'node:assert/strict';
import { upstreamHeaders, stripHopByHop } from '../../src/proxy/headers.ts';
import type { HeaderList } from '../../src/shared/http-types.ts';
import type { ProxyHeaderName } from '../../src/config/types.ts';

/** upstreamHeaders' flat [name, value, ...] output as pairs. */
function backendRequestHeaders(headers: HeaderList, i: typeof info, wanted: readonly ProxyHeaderName[]): HeaderList {
  const flat = upstreamHeaders(headers, i, wanted);
  const out: HeaderList = [];
  for (let k = 0; k < flat.length; k += 2) out.push([flat[k], flat[k + 1]]);
  return out;
}
import { normalizeIp } from '../../src/shared/ip.ts';

const info = { clientIp: '203.0.113.7', proto: 'https' as const, host: 'moodle.example.edu', port: 443 };
const ALL = ['x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-host', 'x-forwarded-port', 'x-real-ip', 'forwarded'] as const;

test('hop-by-hop fields and the ones Connection names are dropped', () => {
  const out = stripHopByHop([
    ['connection', 'keep-alive, x-secret'],
    ['keep-alive', 'timeout=5'],
    ['x-secret', '1'],
    ['transfer-encoding', 'chunked'],
    ['upgrade', 'h2c'],
    ['te', 'trailers'],
    ['accept', '*/*'],
  ]);
  assert.deepEqual(out, [['accept', '*/*']]);
});

test('split cookie fields are joined into one for HTTP/1.1 backends', () => {
  const out = backendRequestHeaders([['cookie', 'a=1'], ['host', 'h'], ['cookie', 'MoodleSession=x']], info, []);
  assert.deepEqual(out.filter(([n]) => n === 'cookie'), [['cookie', 'a=1; MoodleSession=x']]);
});

test('X-Forwarded-For extends the chain; client copies of the other proxy headers are replaced', () => {
  const out = backendRequestHeaders(
    [['x-forwarded-for', '198.51.100.1'], ['x-forwarded-proto', 'http'], ['x-real-ip', '1.1.1.1'], ['forwarded', 'for=198.51.100.1']],
    info,
    ALL,
  );
  const get = (n: string) => out.filter(([k]) => k === n).map(([, v]) => v);
  assert.deepEqual(get('x-forwarded-for'), ['198.51.100.1, 203.0.113.7']);
  assert.deepEqual(get('x-forwarded-proto'), ['https']);
  assert.deepEqual(get('x-real-ip'), ['203.0.113.7']);
  assert.deepEqual(get('x-forwarded-port'), ['443']);
  assert.deepEqual(get('host'), ['moodle.example.edu']);
  assert.deepEqual(get('forwarded'), ['for=198.51.100.1, for=203.0.113.7;proto=https;host=moodle.example.edu']);
});

test('IPv6 clients are bracketed and quoted in Forwarded; v4-mapped addresses are unwrapped', () => {
  const out = backendRequestHeaders([], { ...info, clientIp: '2001:db8::1' }, ['forwarded']);
  assert.deepEqual(out.find(([n]) => n === 'forwarded'), ['forwarded', 'for="[2001:db8::1]";proto=https;host=moodle.example.edu']);
  assert.equal(normalizeIp('::ffff:10.0.0.1'), '10.0.0.1');
  assert.equal(normalizeIp('::1'), '::1');
});
