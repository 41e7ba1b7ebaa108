import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CgiHeadParser, type CgiHead } from '../../src/fastcgi/cgi-response.ts';
import { isFastCgiError } from '../../src/fastcgi/errors.ts';

function head(text: string, step = text.length, max?: number): CgiHead {
  const p = new CgiHeadParser(max);
  const bytes = Buffer.from(text, 'latin1');
  for (let off = 0; off < bytes.length; off += step) {
    const h = p.push(bytes.subarray(off, off + step));
    if (h !== undefined) {
      // The body bytes delivered with the head, then the rest as the caller would pass it on.
      return { ...h, body: Buffer.concat([h.body, bytes.subarray(off + step)]) };
    }
  }
  return p.finish();
}

function badHeader(fn: () => unknown, pattern: RegExp): void {
  assert.throws(fn, (e: unknown) => isFastCgiError(e) && e.code === 'QUICLB_FCGI_BAD_HEADER' && pattern.test(e.message));
}

test('Status with a reason phrase; names lowercase; Status removed; body after the blank line', () => {
  const text = 'Status: 404 Not Found\r\nX-Powered-By: PHP/8.2\r\nContent-type: text/html; charset=UTF-8\r\n\r\n<h1>nope</h1>';
  for (let step = 1; step <= text.length; step++) {
    const h = head(text, step);
    assert.equal(h.status, 404);
    assert.equal(h.statusMessage, 'Not Found');
    assert.deepEqual(h.headers, [
      ['x-powered-by', 'PHP/8.2'],
      ['content-type', 'text/html; charset=UTF-8'],
    ]);
    assert.equal(h.body.toString(), '<h1>nope</h1>', `step ${step}`);
  }
});

test('no Status is 200; Status without a phrase gets the standard one', () => {
  assert.equal(head('Content-Type: text/plain\r\n\r\n').status, 200);
  assert.equal(head('Content-Type: text/plain\r\n\r\n').statusMessage, 'OK');
  const h = head('Status: 503\r\n\r\n');
  assert.equal(h.status, 503);
  assert.equal(h.statusMessage, 'Service Unavailable');
});

test('Location without Status is 302 (RFC 3875 §6.2.3); with Status the Status wins', () => {
  const h = head('Location: https://moodle.example.org/login/index.php\r\n\r\n');
  assert.equal(h.status, 302);
  assert.deepEqual(h.headers, [['location', 'https://moodle.example.org/login/index.php']]);
  assert.equal(head('Status: 301 Moved Permanently\r\nLocation: /x\r\n\r\n').status, 301);
  assert.equal(head('Location: /x\r\nStatus: 303 See Other\r\n\r\n').status, 303);
});

test('several Set-Cookie fields stay separate and in order', () => {
  const h = head('Set-Cookie: MoodleSession=abc; path=/\r\nSet-Cookie: MOODLEID1_=x; path=/\r\nset-cookie: third=3\r\n\r\n');
  assert.deepEqual(h.headers.filter(([n]) => n === 'set-cookie').map(([, v]) => v), ['MoodleSession=abc; path=/', 'MOODLEID1_=x; path=/', 'third=3']);
});

test('bare LF line endings are accepted; values are trimmed; latin1 bytes kept', () => {
  const h = head('Status: 200 OK\nX-A:   spaced  \nX-B: caf\xe9\n\nbody');
  assert.deepEqual(h.headers, [
    ['x-a', 'spaced'],
    ['x-b', 'caf\xe9'],
  ]);
  assert.equal(h.body.toString(), 'body');
});

test('the header block is bounded', () => {
  const big = `X-Big: ${'a'.repeat(2000)}\r\n\r\n`;
  badHeader(() => head(big, 100, 1024), /within 1024 bytes/);
  badHeader(() => head(big, big.length, 1024), /larger than 1024 bytes/);
  assert.equal(head(big, 100, 4096).headers[0][1].length, 2000);
});

test('malformed blocks are rejected with QUICLB_FCGI_BAD_HEADER', () => {
  badHeader(() => head('Status: abc\r\n\r\n'), /invalid or repeated Status/);
  badHeader(() => head('Status: 200\r\nStatus: 404\r\n\r\n'), /invalid or repeated Status/);
  badHeader(() => head('Status: 101 Switching Protocols\r\n\r\n'), /not a final status/);
  badHeader(() => head('no colon here\r\n\r\n'), /without a field name/);
  badHeader(() => head(': empty name\r\n\r\n'), /without a field name/);
  badHeader(() => head('Bad Name: x\r\n\r\n'), /invalid field name/);
  badHeader(() => head('X-A: a\r\n folded\r\n\r\n'), /folded/);
  badHeader(() => head('X-A: a\rb\r\n\r\n'), /invalid characters/);
  badHeader(() => head('X-A: a\x00b\r\n\r\n'), /invalid characters/);
  badHeader(() => head('X-A: a\r\n'), /inside the header block/);
  badHeader(() => new CgiHeadParser().finish(), /empty STDOUT/);
});
