import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  FCGI_BEGIN_REQUEST,
  FCGI_END_REQUEST,
  FCGI_KEEP_CONN,
  FCGI_PARAMS,
  FCGI_STDERR,
  FCGI_STDIN,
  FCGI_STDOUT,
  RecordParser,
  abortRequestRecord,
  beginRequestRecord,
  encodeNameValuePair,
  endOfStreamRecord,
  paramsRecords,
  recordHeader,
  streamRecordParts,
  type RecordEvent,
} from '../../src/fastcgi/records.ts';
import { isFastCgiError } from '../../src/fastcgi/errors.ts';

/** Parses `bytes` fed in pieces of `step` bytes; stream pieces of one record are joined. */
function parse(role: 'client' | 'server', bytes: Buffer, step = bytes.length || 1): RecordEvent[] {
  const events: RecordEvent[] = [];
  const p = new RecordParser(role, (e) => {
    const last = events.at(-1);
    if (e.kind === 'stream' && e.data.length > 0 && last?.kind === 'stream' && last.type === e.type && last.data.length > 0) {
      last.data = Buffer.concat([last.data, e.data]);
    } else {
      events.push(e.kind === 'stream' ? { ...e, data: Buffer.from(e.data) } : e);
    }
  });
  for (let off = 0; off < bytes.length; off += step) p.push(bytes.subarray(off, off + step));
  assert.ok(p.atBoundary, 'parser ends between records');
  return events;
}

function endRequest(requestId: number, appStatus: number, protocolStatus: number): Buffer {
  const body = Buffer.alloc(8);
  body.writeUInt32BE(appStatus, 0);
  body[4] = protocolStatus;
  return Buffer.concat([recordHeader(FCGI_END_REQUEST, requestId, 8), body]);
}

test('BEGIN_REQUEST: version 1, type 1, role RESPONDER, FCGI_KEEP_CONN flag (spec §5.1)', () => {
  const b = beginRequestRecord(1, true);
  assert.deepEqual([...b], [1, 1, 0, 1, 0, 8, 0, 0, 0, 1, FCGI_KEEP_CONN, 0, 0, 0, 0, 0]);
  assert.equal(beginRequestRecord(7, false)[10], 0);
  assert.deepEqual(parse('server', b), [{ kind: 'begin', requestId: 1, role: 1, flags: 1 }]);
});

test('name-value pairs use 1-byte lengths below 128 and 4-byte lengths with the top bit above (spec §3.4)', () => {
  assert.deepEqual([...encodeNameValuePair('A', 'bc')], [1, 2, 0x41, 0x62, 0x63]);
  const long = 'x'.repeat(300);
  const pair = encodeNameValuePair('N', long);
  assert.deepEqual([...pair.subarray(0, 5)], [1, 0x80, 0, 1, 44]);
  assert.equal(pair.length, 1 + 4 + 1 + 300);
  const longName = encodeNameValuePair('H'.repeat(128), '');
  assert.deepEqual([...longName.subarray(0, 5)], [0x80, 0, 0, 128, 0]);
  // Exactly 127 still takes one byte.
  assert.equal(encodeNameValuePair('n', 'v'.repeat(127))[1], 127);
  // UTF-8 bytes are counted, not UTF-16 units.
  assert.equal(encodeNameValuePair('n', 'é')[1], 2);
});

test('PARAMS: records padded to 8 bytes, split at 65528 content bytes, closed by an empty record', () => {
  const params: Array<[string, string]> = [
    ['SCRIPT_FILENAME', '/srv/moodle/index.php'],
    ['BIG', 'v'.repeat(100_000)],
  ];
  const bytes = paramsRecords(1, params);
  assert.equal(bytes.length % 8, 0);
  let off = 0;
  const lengths: number[] = [];
  while (off < bytes.length) {
    assert.equal(bytes[1 + off], FCGI_PARAMS);
    const len = bytes.readUInt16BE(off + 4);
    const pad = bytes[off + 6];
    assert.equal((len + pad) % 8, 0);
    lengths.push(len);
    off += 8 + len + pad;
  }
  assert.equal(lengths.at(-1), 0);
  assert.ok(lengths.slice(0, -1).every((l) => l <= 65528));
  assert.equal(lengths.length, 3);
  const events = parse('server', bytes, 1009);
  const stream = Buffer.concat(events.filter((e) => e.kind === 'stream').map((e) => (e as { data: Buffer }).data));
  assert.deepEqual(stream, Buffer.concat(params.map(([n, v]) => encodeNameValuePair(n, v))));
  assert.equal((events.at(-1) as { data: Buffer }).data.length, 0);
  // No params: just the closing record.
  assert.deepEqual([...paramsRecords(3, [])], [...endOfStreamRecord(FCGI_PARAMS, 3)]);
});

test('STDIN parts reference the caller\'s bytes and split at 65535', () => {
  const data = Buffer.alloc(70_000, 7);
  const parts = streamRecordParts(FCGI_STDIN, 1, data);
  assert.equal(parts.length, 4);
  assert.equal(Buffer.from(parts[0]).readUInt16BE(4), 65535);
  assert.equal(Buffer.from(parts[2]).readUInt16BE(4), 70_000 - 65535);
  assert.equal(parts[1].buffer, data.buffer, 'no copy');
  assert.deepEqual(streamRecordParts(FCGI_STDIN, 1, new Uint8Array(0)), []);
  const events = parse('server', Buffer.concat([...parts, endOfStreamRecord(FCGI_STDIN, 1)]), 1000);
  assert.deepEqual((events[0] as { data: Buffer }).data, data);
  assert.equal(events.length, 2);
});

test('ABORT_REQUEST is a bare header', () => {
  assert.deepEqual([...abortRequestRecord(5)], [1, 2, 0, 5, 0, 0, 0, 0]);
  assert.deepEqual(parse('server', abortRequestRecord(5)), [{ kind: 'abort', requestId: 5 }]);
});

test('a response stream parses the same at every chunk size (1 byte to all at once)', () => {
  const out = Buffer.from('Status: 200 OK\r\nContent-Type: text/plain\r\n\r\nhello');
  const bytes = Buffer.concat([
    recordHeader(FCGI_STDOUT, 1, out.length, 3),
    out,
    Buffer.alloc(3),
    recordHeader(FCGI_STDERR, 1, 4),
    Buffer.from('oops'),
    recordHeader(FCGI_STDOUT, 1, 0),
    endRequest(1, 0, 0),
  ]);
  const expected: RecordEvent[] = [
    { kind: 'stream', type: FCGI_STDOUT, requestId: 1, data: out },
    { kind: 'stream', type: FCGI_STDERR, requestId: 1, data: Buffer.from('oops') },
    { kind: 'stream', type: FCGI_STDOUT, requestId: 1, data: Buffer.alloc(0) },
    { kind: 'end', requestId: 1, appStatus: 0, protocolStatus: 0 },
  ];
  for (let step = 1; step <= bytes.length; step++) assert.deepEqual(parse('client', bytes, step), expected, `step ${step}`);
  assert.deepEqual(parse('client', endRequest(2, 0xdeadbeef, 2)), [{ kind: 'end', requestId: 2, appStatus: 0xdeadbeef, protocolStatus: 2 }]);
});

function rejects(role: 'client' | 'server', bytes: Buffer, pattern: RegExp): void {
  const p = new RecordParser(role, () => {});
  let caught: unknown;
  try {
    p.push(bytes);
  } catch (err) {
    caught = err;
  }
  assert.ok(isFastCgiError(caught), `expected FastCgiError, got ${String(caught)}`);
  assert.equal(caught.code, 'QUICLB_FCGI_PROTOCOL');
  assert.match(caught.message, pattern);
  // The parser stays failed.
  assert.throws(() => p.push(Buffer.from([1])), (e: unknown) => isFastCgiError(e) && e.code === 'QUICLB_FCGI_PROTOCOL');
}

test('malformed streams are rejected with QUICLB_FCGI_PROTOCOL', () => {
  const bad = recordHeader(FCGI_STDOUT, 1, 0);
  bad[0] = 2;
  rejects('client', bad, /version 2/);
  rejects('client', recordHeader(FCGI_STDIN, 1, 0), /unexpected record type 5/);
  rejects('client', recordHeader(11, 0, 8), /unexpected record type 11/);
  rejects('client', recordHeader(FCGI_STDOUT, 0, 0), /request id 0/);
  rejects('client', recordHeader(FCGI_END_REQUEST, 1, 4), /content length 4, expected 8/);
  rejects('server', recordHeader(FCGI_STDOUT, 1, 0), /unexpected record type 6/);
  rejects('server', recordHeader(FCGI_BEGIN_REQUEST, 1, 9), /content length 9/);
});
