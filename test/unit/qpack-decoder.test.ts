import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  H3Error,
  H3_MESSAGE_ERROR,
  QPACK_DECOMPRESSION_FAILED,
  QPACK_ENCODER_STREAM_ERROR,
} from '../../src/http3/errors.ts';
import { QpackDecoder } from '../../src/http3/qpack/decoder.ts';
import { prefixedIntSize, writePrefixedInt } from '../../src/http3/qpack/prefixed-int.ts';

const bytes = (h: string) => Uint8Array.from(Buffer.from(h.replace(/\s+/g, ''), 'hex'));
const hex = (b: Uint8Array | null) => (b === null ? null : Buffer.from(b).toString('hex'));

function decoder(maxTableCapacity = 220, maxBlockedStreams = 16, maxFieldSectionSize = 16384): QpackDecoder {
  return new QpackDecoder({ maxTableCapacity, maxBlockedStreams, maxFieldSectionSize });
}

function prefixedInt(value: number, prefixBits: number, flags: number): Uint8Array {
  const out = new Uint8Array(prefixedIntSize(value, prefixBits));
  writePrefixedInt(out, 0, value, prefixBits, flags);
  return out;
}

function expectError(fn: () => unknown, code: number, scope: 'stream' | 'connection' = 'connection'): void {
  assert.throws(fn, (e: unknown) => e instanceof H3Error && e.code === code && e.scope === scope);
}

// RFC 9204 Appendix B, byte for byte.
const B1_SECTION = '0000 510b 2f69 6e64 6578 2e68 746d 6c';
const B2_ENCODER = '3fbd01 c00f 7777 772e 6578 616d 706c 652e 636f 6d c10c 2f73 616d 706c 652f 7061 7468';
const B2_SECTION = '0381 10 11';
const B3_ENCODER = '4a63 7573 746f 6d2d 6b65 790c 6375 7374 6f6d 2d76 616c 7565';
const B4_ENCODER = '02';
const B4_SECTION = '0500 80 c1 81';
const B5_ENCODER = '810d 6375 7374 6f6d 2d76 616c 7565 32';

describe('QPACK decoder: RFC 9204 Appendix B', () => {
  it('B.1 literal field line with name reference', () => {
    const d = decoder();
    assert.deepEqual(d.decodeFieldSection(0, bytes(B1_SECTION)), [[':path', '/index.html']]);
    assert.equal(d.takeDecoderStreamBytes(), null, 'no dynamic reference, nothing to acknowledge');
  });

  it('B.2-B.5 dynamic table, speculative insert, duplicate + stream cancellation, eviction', () => {
    const d = decoder();
    // B.2
    assert.deepEqual(d.feedEncoderStream(bytes(B2_ENCODER)), []);
    assert.equal(d.table.size, 106);
    assert.deepEqual(d.decodeFieldSection(4, bytes(B2_SECTION)), [
      [':authority', 'www.example.com'],
      [':path', '/sample/path'],
    ]);
    assert.equal(hex(d.takeDecoderStreamBytes()), '84', 'Section Acknowledgment (stream=4)');
    // B.3
    assert.deepEqual(d.feedEncoderStream(bytes(B3_ENCODER)), []);
    assert.equal(d.table.size, 160);
    assert.equal(hex(d.takeDecoderStreamBytes()), '01', 'Insert Count Increment (1)');
    // B.4: the encoder-stream packet is delayed, so the section blocks and the decoder cancels the stream.
    assert.equal(d.decodeFieldSection(8, bytes(B4_SECTION)), null);
    assert.equal(d.blockedStreamCount, 1);
    d.cancelStream(8);
    assert.equal(hex(d.takeDecoderStreamBytes()), '48', 'Stream Cancellation (stream=8)');
    assert.deepEqual(d.feedEncoderStream(bytes(B4_ENCODER)), [], 'cancelled section is not decoded');
    assert.equal(d.table.size, 217);
    assert.equal(hex(d.takeDecoderStreamBytes()), '01');
    // B.5
    assert.deepEqual(d.feedEncoderStream(bytes(B5_ENCODER)), []);
    assert.equal(d.table.size, 215);
    assert.equal(d.table.get(0), undefined, 'oldest entry evicted');
    assert.deepEqual(d.table.get(4), ['custom-key', 'custom-value2']);
    assert.deepEqual(d.table.get(3), [':authority', 'www.example.com']);
    assert.equal(hex(d.takeDecoderStreamBytes()), '01');
  });

  it('B.4 without the cancellation: the blocked section resumes when the Duplicate arrives', () => {
    const d = decoder();
    d.feedEncoderStream(bytes(B2_ENCODER));
    d.decodeFieldSection(4, bytes(B2_SECTION));
    d.feedEncoderStream(bytes(B3_ENCODER));
    assert.equal(hex(d.takeDecoderStreamBytes()), '8401');
    assert.equal(d.decodeFieldSection(8, bytes(B4_SECTION)), null);
    // Encoder bytes split mid-instruction are buffered until complete.
    const b5 = bytes(B4_ENCODER + B5_ENCODER);
    assert.deepEqual(d.feedEncoderStream(b5.subarray(0, 0)), []);
    const resumed = d.feedEncoderStream(b5.subarray(0, 3));
    assert.deepEqual(resumed, [
      {
        streamId: 8,
        headers: [
          [':authority', 'www.example.com'],
          [':path', '/'],
          ['custom-key', 'custom-value'],
        ],
        error: null,
      },
    ]);
    assert.equal(d.table.insertCount, 4, 'partial Insert With Name Reference not applied yet');
    assert.deepEqual(d.feedEncoderStream(b5.subarray(3)), []);
    assert.equal(d.table.insertCount, 5);
    assert.equal(hex(d.takeDecoderStreamBytes()), '8801', 'Section Acknowledgment (stream=8), then the new insert');
  });

  it('decodes encoder-stream bytes fed one at a time', () => {
    const d = decoder();
    const all = bytes(B2_ENCODER + B3_ENCODER + B4_ENCODER + B5_ENCODER);
    for (const b of all) d.feedEncoderStream(Uint8Array.of(b));
    assert.equal(d.table.insertCount, 5);
    assert.equal(d.table.size, 215);
  });
});

describe('QPACK decoder: malformed input', () => {
  function withB2(): QpackDecoder {
    const d = decoder();
    d.feedEncoderStream(bytes(B2_ENCODER));
    return d;
  }

  it('rejects a static index out of range', () => {
    expectError(() => decoder().decodeFieldSection(0, bytes('0000 ff24')), QPACK_DECOMPRESSION_FAILED); // index 99
    expectError(() => decoder().decodeFieldSection(0, bytes('0000 5f54 00')), QPACK_DECOMPRESSION_FAILED); // name 99
  });

  it('rejects dynamic references outside the section or evicted', () => {
    expectError(() => decoder().decodeFieldSection(0, bytes('0000 80')), QPACK_DECOMPRESSION_FAILED);
    expectError(() => withB2().decodeFieldSection(0, bytes('0381 12')), QPACK_DECOMPRESSION_FAILED); // post-base 2 >= RIC
    assert.deepEqual(withB2().decodeFieldSection(0, bytes('0200 80')), [[':authority', 'www.example.com']]);
    expectError(() => withB2().decodeFieldSection(0, bytes('0200 81')), QPACK_DECOMPRESSION_FAILED); // abs -1
    expectError(() => withB2().decodeFieldSection(0, bytes('0200 10')), QPACK_DECOMPRESSION_FAILED); // abs 1 >= RIC 1
    expectError(() => withB2().decodeFieldSection(0, bytes('0200 41 0161')), QPACK_DECOMPRESSION_FAILED); // name abs -1
  });

  it('rejects references to evicted entries', () => {
    const d = decoder();
    d.feedEncoderStream(bytes(B2_ENCODER + B3_ENCODER + B4_ENCODER + B5_ENCODER));
    // RIC 5 (encoded 5 % 12 + 1 = 6), Base 5, relative index 4 -> absolute 0, evicted in B.5.
    expectError(() => d.decodeFieldSection(0, bytes('0600 84')), QPACK_DECOMPRESSION_FAILED);
    assert.deepEqual(d.decodeFieldSection(0, bytes('0600 83')), [[':path', '/sample/path']]);
  });

  it('rejects impossible Required Insert Count and Base values', () => {
    expectError(() => decoder().decodeFieldSection(0, bytes('0d00')), QPACK_DECOMPRESSION_FAILED); // > FullRange 12
    expectError(() => decoder(0).decodeFieldSection(0, bytes('0100')), QPACK_DECOMPRESSION_FAILED); // no table
    expectError(() => withB2().decodeFieldSection(0, bytes('0382 10')), QPACK_DECOMPRESSION_FAILED); // Base < 0
  });

  it('rejects truncated sections and huge integers', () => {
    for (const s of ['', '00', '0000 51', '0000 510b 2f69', '0000 ff', '0000 2f']) {
      expectError(() => decoder().decodeFieldSection(0, bytes(s)), QPACK_DECOMPRESSION_FAILED);
    }
    expectError(() => decoder().decodeFieldSection(0, bytes('0000 ffffffffffffffffffffff01')), QPACK_DECOMPRESSION_FAILED);
    expectError(() => decoder().decodeFieldSection(0, bytes('ffffffffffffffffffffffff7f 00')), QPACK_DECOMPRESSION_FAILED);
    expectError(() => decoder().decodeFieldSection(0, bytes('0000 517fffffffffffffffffff01')), QPACK_DECOMPRESSION_FAILED);
  });

  it('rejects bad Huffman strings in a section', () => {
    expectError(() => decoder().decodeFieldSection(0, bytes('0000 5181ff')), QPACK_DECOMPRESSION_FAILED);
  });

  it('limits blocked streams to SETTINGS_QPACK_BLOCKED_STREAMS', () => {
    const d = decoder(220, 1);
    assert.equal(d.decodeFieldSection(0, bytes('0200 80')), null);
    expectError(() => d.decodeFieldSection(4, bytes('0200 80')), QPACK_DECOMPRESSION_FAILED);
    const none = decoder(220, 0);
    expectError(() => none.decodeFieldSection(0, bytes('0200 80')), QPACK_DECOMPRESSION_FAILED);
  });

  it('enforces the maximum field section size as a stream error', () => {
    const d = decoder(220, 16, 64);
    // :path=/index.html is 5 + 11 + 32 = 48 bytes; twice is 96 > 64.
    assert.deepEqual(d.decodeFieldSection(0, bytes(B1_SECTION)), [[':path', '/index.html']]);
    expectError(() => d.decodeFieldSection(0, bytes(B1_SECTION + '510b2f696e6465782e68746d6c')), H3_MESSAGE_ERROR, 'stream');
  });

  it('rejects bad encoder-stream instructions', () => {
    const setCap = (n: number) => prefixedInt(n, 5, 0x20);
    expectError(() => decoder(220).feedEncoderStream(setCap(221)), QPACK_ENCODER_STREAM_ERROR);
    expectError(() => decoder(220).feedEncoderStream(bytes('3fbd01 ff24 00')), QPACK_ENCODER_STREAM_ERROR); // static 99
    expectError(() => decoder(220).feedEncoderStream(bytes('3fbd01 8000')), QPACK_ENCODER_STREAM_ERROR); // empty table
    expectError(() => decoder(220).feedEncoderStream(bytes('3fbd01 00')), QPACK_ENCODER_STREAM_ERROR); // duplicate
    // Capacity 40, entry 'abcdefghij'='' is 42 bytes.
    expectError(
      () => decoder(220).feedEncoderStream(Buffer.concat([setCap(40), bytes('4a'), Buffer.from('abcdefghij'), bytes('00')])),
      QPACK_ENCODER_STREAM_ERROR,
    );
    // No capacity set yet: any insert is too large.
    expectError(() => decoder(220).feedEncoderStream(bytes('c000')), QPACK_ENCODER_STREAM_ERROR);
    // Length prefix far beyond what the table could hold.
    expectError(() => decoder(220).feedEncoderStream(bytes('3fbd01 c07fffff7f')), QPACK_ENCODER_STREAM_ERROR);
    expectError(() => decoder(220).feedEncoderStream(bytes('3fbd01 c081ff')), QPACK_ENCODER_STREAM_ERROR); // Huffman
    expectError(() => decoder(220).feedEncoderStream(bytes('3fffffffffffffffffffff01')), QPACK_ENCODER_STREAM_ERROR);
  });

  it('fails a blocked section that turns out malformed when it resumes', () => {
    const d = decoder();
    assert.equal(d.decodeFieldSection(0, bytes('0200 ff24')), null); // static index 99, only seen after unblocking
    expectError(() => d.feedEncoderStream(bytes('3fbd01 c00f 7777 772e 6578 616d 706c 652e 636f 6d')), QPACK_DECOMPRESSION_FAILED);
  });

  it('reports an oversized blocked section as a stream error on resume', () => {
    const d = decoder(220, 16, 40);
    assert.equal(d.decodeFieldSection(4, bytes('0200 80')), null);
    const out = d.feedEncoderStream(bytes(B2_ENCODER));
    assert.equal(out.length, 1);
    assert.equal(out[0].streamId, 4);
    assert.equal(out[0].headers, null);
    assert.equal(out[0].error?.code, H3_MESSAGE_ERROR);
    assert.equal(out[0].error?.status, 431);
  });
});

describe('QPACK decoder: bounded work for oversized sections (RFC 9114 §4.2.2)', () => {
  const tooLarge = (e: unknown) => e instanceof H3Error && e.code === H3_MESSAGE_ERROR && e.scope === 'stream' && e.status === 431;

  it('cuts a "QPACK bomb" at the limit: a 3000-byte dynamic entry referenced 10,000 times', () => {
    const d = decoder(4096, 16, 16384);
    const value = 'b'.repeat(3000);
    // Set Dynamic Table Capacity 4096; Insert With Literal Name x-bomb (6) = 3000 bytes (raw).
    d.feedEncoderStream(Buffer.concat([prefixedInt(4096, 5, 0x20), prefixedInt(6, 5, 0x40), Buffer.from('x-bomb'), prefixedInt(3000, 7, 0), Buffer.from(value)]));
    // Required Insert Count 1 (encoded 2 for MaxEntries 128), Base 1, then 10,000 references to it (~30 MB decoded).
    const section = Buffer.concat([bytes('0200'), Buffer.alloc(10_000, 0x80)]);
    assert.throws(() => d.decodeFieldSection(0, section), tooLarge);
    // Five lines fit (5 x 3038 = 15190 <= 16384), the sixth is refused: the same section cut short decodes.
    assert.equal(d.decodeFieldSection(4, Buffer.concat([bytes('0200'), Buffer.alloc(5, 0x80)]))?.length, 5);
    assert.throws(() => d.decodeFieldSection(8, Buffer.concat([bytes('0200'), Buffer.alloc(6, 0x80)])), tooLarge);
  });

  it('refuses a string literal longer than the remaining budget before decoding it', () => {
    const d = decoder(0, 0, 1000);
    // Literal with literal name 'x' and a raw value whose declared length exceeds the budget: refused on the
    // length alone, though the section is truncated (decoding would have failed as QPACK_DECOMPRESSION_FAILED).
    const raw = Buffer.concat([bytes('0000'), bytes('21'), Buffer.from('x'), prefixedInt(5000, 7, 0x00), Buffer.from('abc')]);
    assert.throws(() => d.decodeFieldSection(0, raw), tooLarge);
    // A Huffman value of 8000 encoded bytes decodes to at least 8000 * 8 / 30 = 2133 > 1000: refused too.
    const huff = Buffer.concat([bytes('0000'), bytes('21'), Buffer.from('x'), prefixedInt(8000, 7, 0x80), Buffer.from('abc')]);
    assert.throws(() => d.decodeFieldSection(0, huff), tooLarge);
  });

  it('limits the number of field lines', () => {
    const d = new QpackDecoder({ maxTableCapacity: 0, maxBlockedStreams: 0, maxFieldSectionSize: 1 << 20, maxFieldLines: 3 });
    // Indexed static :method GET (0xd1) three times passes, four times is refused.
    assert.equal(d.decodeFieldSection(0, bytes('0000 d1d1d1'))?.length, 3);
    assert.throws(() => d.decodeFieldSection(4, bytes('0000 d1d1d1d1')), tooLarge);
  });
});
