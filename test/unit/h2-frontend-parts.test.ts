// The sans-IO parts of the HTTP/2 frontend: the request head (authority, host, 405, 431), the response
// header block node gets, and the reset budgets.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fieldSectionSize, readRequestHead } from '../../src/tcp/h2/request-head.ts';
import { toNodeHeaders } from '../../src/tcp/h2/response-headers.ts';
import { LocalClientResetBudget, ResetWindow } from '../../src/tcp/h2/reset-budget.ts';

const LIMITS = { maxHeaderSize: 16 * 1024, maxHeaderCount: 8 };
const raw = (path = '/x?y=1', ...more: string[]) => [':method', 'GET', ':scheme', 'https', ':authority', 'moodle.test', ':path', path, ...more];

test('fieldSectionSize counts name + value + 32 per field, pseudo-header fields included (RFC 9113 §6.5.2)', () => {
  assert.equal(fieldSectionSize([':method', 'GET', 'a', 'bc']), 7 + 3 + 32 + 1 + 2 + 32);
  assert.equal(fieldSectionSize([]), 0);
});

test(':authority becomes the authority and the one host field, first; other fields keep their order', () => {
  const head = readRequestHead(raw('/x?y=1', 'cookie', 'a=1', 'accept', '*/*', 'cookie', 'b=2'), LIMITS);
  assert.deepEqual(head, {
    kind: 'request',
    method: 'GET',
    authority: 'moodle.test',
    path: '/x?y=1',
    headers: [['host', 'moodle.test'], ['cookie', 'a=1'], ['accept', '*/*'], ['cookie', 'b=2']],
    websocket: false,
  });
});

test('host alone stands in for :authority; a host equal to :authority but for case is kept once, spelled as :authority', () => {
  const hostOnly = readRequestHead([':method', 'GET', ':scheme', 'https', ':path', '/', 'x-a', '1', 'host', 'h.test:8443'], LIMITS);
  assert.equal(hostOnly.kind, 'request');
  assert.equal(hostOnly.kind === 'request' && hostOnly.authority, 'h.test:8443');
  assert.deepEqual(hostOnly.kind === 'request' && hostOnly.headers, [['host', 'h.test:8443'], ['x-a', '1']]);
  const sameCase = readRequestHead(raw('/', 'host', 'MOODLE.test'), LIMITS);
  assert.deepEqual(sameCase.kind === 'request' && sameCase.headers, [['host', 'moodle.test']]);
});

test(':authority and host that differ are malformed (400); CONNECT is 405', () => {
  const mismatch = readRequestHead(raw('/', 'host', 'other.test'), LIMITS);
  assert.equal(mismatch.kind, 'reject');
  assert.equal(mismatch.kind === 'reject' && mismatch.status, 400);
  const port = readRequestHead(raw('/', 'host', 'moodle.test:443'), LIMITS);
  assert.equal(port.kind === 'reject' && port.status, 400, 'a port makes another value');
  const connect = readRequestHead([':method', 'CONNECT', ':authority', 'db:5432'], LIMITS);
  assert.equal(connect.kind === 'reject' && connect.status, 405);
  const none = readRequestHead([':method', 'GET', ':scheme', 'https', ':path', '/'], LIMITS);
  assert.equal(none.kind === 'reject' && none.status, 400);
});

test('extended CONNECT (RFC 8441): :protocol websocket is a GET handed on as a WebSocket handshake; any other protocol 501', () => {
  const ws = readRequestHead([':method', 'CONNECT', ':protocol', 'websocket', ':scheme', 'https', ':authority', 'moodle.test', ':path', '/chat?x=1', 'sec-websocket-version', '13'], LIMITS);
  assert.equal(ws.kind, 'request');
  if (ws.kind !== 'request') return;
  assert.equal(ws.method, 'GET');
  assert.equal(ws.websocket, true);
  assert.equal(ws.path, '/chat?x=1');
  assert.deepEqual(ws.headers, [['host', 'moodle.test'], ['sec-websocket-version', '13']]);
  const other = readRequestHead([':method', 'CONNECT', ':protocol', 'connect-udp', ':scheme', 'https', ':authority', 'moodle.test', ':path', '/'], LIMITS);
  assert.equal(other.kind === 'reject' && other.status, 501);
  const plain = readRequestHead(raw('/'), LIMITS);
  assert.equal(plain.kind === 'request' && plain.websocket, false);
});

test('431 past maxHeaderSize (decoded, as counted by RFC 9113 §6.5.2) and past maxHeaderCount regular fields', () => {
  const base = raw('/');
  const room = LIMITS.maxHeaderSize - fieldSectionSize(base) - 32 - 'x-pad'.length;
  const fits = readRequestHead([...base, 'x-pad', 'p'.repeat(room)], LIMITS);
  assert.equal(fits.kind, 'request', 'exactly maxHeaderSize fits');
  const over = readRequestHead([...base, 'x-pad', 'p'.repeat(room + 1)], LIMITS);
  assert.equal(over.kind === 'reject' && over.status, 431);
  const fields = (n: number) => Array.from({ length: n }, (_, i) => [`x-${i}`, '1']).flat();
  assert.equal(readRequestHead([...base, ...fields(8)], LIMITS).kind, 'request');
  const many = readRequestHead([...base, ...fields(9)], LIMITS);
  assert.equal(many.kind === 'reject' && many.status, 431);
});

test('toNodeHeaders keeps the first of repeated single-value fields, every value of others, and drops connection-specific fields', () => {
  const out = toNodeHeaders(200, [
    ['etag', '"1"'],
    ['set-cookie', 'a=1'],
    ['etag', '"2"'],
    ['location', '/a'],
    ['location', '/b'],
    ['x-content-type-options', 'nosniff'],
    ['x-content-type-options', 'nosniff'],
    ['set-cookie', 'b=2'],
    ['connection', 'keep-alive'],
    ['keep-alive', 'timeout=5'],
    ['transfer-encoding', 'chunked'],
    ['upgrade', 'h2c'],
    ['te', 'trailers'],
    ['__proto__', 'field'],
  ]);
  assert.deepEqual({ ...out }, {
    ':status': 200,
    etag: '"1"',
    'set-cookie': ['a=1', 'b=2'],
    location: '/a',
    'x-content-type-options': 'nosniff',
    ['__proto__']: 'field',
  });
  assert.equal(Object.getPrototypeOf(out), null);
});

test('ResetWindow allows max per window and starts over when the window has passed', () => {
  const w = new ResetWindow(3, 1000);
  assert.deepEqual([w.hit(0), w.hit(10), w.hit(20), w.hit(30)], [true, true, true, false]);
  assert.equal(w.hit(999), false);
  assert.equal(w.hit(1000), true, 'a new window');
});

test('LocalClientResetBudget counts per address across connections and forgets the oldest past maxClients', () => {
  const b = new LocalClientResetBudget({ maxResets: 2, windowMs: 1000, maxClients: 2 });
  assert.deepEqual([b.spend('a', 0), b.spend('a', 1), b.spend('a', 2)], [true, true, false]);
  assert.equal(b.spend('b', 3), true, 'another address has its own budget');
  assert.equal(b.spend('a', 4), false);
  b.spend('c', 5); // evicts 'a', the oldest
  assert.equal(b.spend('a', 6), true);
});
