import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { FrameReader } from '../../src/http3/frames.ts';
import { QpackDecoder } from '../../src/http3/qpack/decoder.ts';
import { FieldSectionWriter, encodeFieldSection } from '../../src/http3/qpack/encoder.ts';
import { STATIC_TABLE, findStaticExact, findStaticName } from '../../src/http3/qpack/static-table.ts';

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

function decode(section: Uint8Array): Array<[string, string]> | null {
  return new QpackDecoder({ maxTableCapacity: 0, maxBlockedStreams: 0, maxFieldSectionSize: 1 << 20 }).decodeFieldSection(
    0,
    section,
  );
}

describe('QPACK static table (RFC 9204 Appendix A)', () => {
  it('has 99 entries with the documented anchors', () => {
    assert.equal(STATIC_TABLE.length, 99);
    assert.deepEqual(STATIC_TABLE[0], [':authority', '']);
    assert.deepEqual(STATIC_TABLE[17], [':method', 'GET']);
    assert.deepEqual(STATIC_TABLE[25], [':status', '200']);
    assert.deepEqual(STATIC_TABLE[63], [':status', '100']);
    assert.deepEqual(STATIC_TABLE[98], ['x-frame-options', 'sameorigin']);
    assert.equal(findStaticExact(':status', '404'), 27);
    assert.equal(findStaticExact(':status', '418'), -1);
    assert.equal(findStaticName('content-type'), 44);
    assert.equal(findStaticName('x-unknown'), -1);
  });
});

describe('QPACK encoder (static table and literals only)', () => {
  it('uses Required Insert Count 0 and static indices', () => {
    assert.equal(hex(encodeFieldSection([[':status', '200']])), '0000d9');
    assert.equal(hex(encodeFieldSection([[':method', 'GET']])), '0000d1');
    assert.equal(hex(encodeFieldSection([])), '0000');
  });

  it('uses Huffman only when it is shorter', () => {
    // "/index.html" is 8 bytes in Huffman, 11 raw: static name :path (0x51), H flag, length 8.
    const s = encodeFieldSection([[':path', '/index.html']]);
    assert.equal(hex(s.subarray(0, 4)), '000051' + '88');
    assert.equal(s.length, 4 + 8);
    // Bytes with long codes stay raw: literal name 'x-bin' is Huffman (shorter), value raw.
    const bin = String.fromCharCode(0xfe, 0xfd, 0x01, 0x7f);
    const t = encodeFieldSection([['x-bin', bin]]);
    assert.deepEqual(decode(t), [['x-bin', bin]]);
    assert.equal(t[t.length - 5], 0x04, 'raw value with length 4');
  });

  it('round-trips assorted field lists through the decoder', () => {
    const long = 'v'.repeat(10_000);
    const lists: Array<Array<[string, string]>> = [
      [
        [':status', '200'],
        ['content-type', 'text/html; charset=utf-8'],
        ['content-type', 'text/x-custom'],
        ['x-request-id', 'a1b2c3d4'],
        ['set-cookie', 'MoodleSession=abc; path=/; secure; HttpOnly'],
        ['empty', ''],
        ['cache-control', 'no-store'],
      ],
      [['x-long', long], [long.slice(0, 300), 'name is long']],
      [['x-latin1', 'caf\u00e9 \u00ff\u0080']],
      [[':status', '418']],
    ];
    for (const list of lists) assert.deepEqual(decode(encodeFieldSection(list)), list);
  });

  it('sends characters above latin1 as raw UTF-8', () => {
    const s = encodeFieldSection([['x-utf8', '\u20ac']]);
    assert.deepEqual(decode(s), [['x-utf8', '\u00e2\u0082\u00ac']], 'the decoder returns the UTF-8 bytes as latin1');
  });

  it('wraps a section in a HEADERS frame without an extra copy of the header', () => {
    const w = new FieldSectionWriter();
    w.begin();
    w.add(':status', '204');
    w.add('x-a', 'b');
    const frame = w.finishHeadersFrame();
    const reader = new FrameReader();
    reader.push(frame);
    const f = reader.next();
    assert.ok(f !== null && f.kind === 'headers');
    assert.deepEqual(decode(f.payload), [
      [':status', '204'],
      ['x-a', 'b'],
    ]);
    reader.finish();
  });

  it('returns frames that stay intact when the writer is reused', () => {
    const w = new FieldSectionWriter();
    w.begin();
    w.add(':status', '200');
    const first = w.finishHeadersFrame();
    const firstBytes = Uint8Array.from(first);
    w.begin();
    w.add(':status', '404');
    w.add('x-long-header-name', 'a value long enough to overwrite the first frame');
    w.finishHeadersFrame();
    assert.deepEqual(Uint8Array.from(first), firstBytes);
  });
});
