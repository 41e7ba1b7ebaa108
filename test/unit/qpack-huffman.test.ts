import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { H3Error, QPACK_DECOMPRESSION_FAILED, QPACK_ENCODER_STREAM_ERROR } from '../../src/http3/errors.ts';
import {
  HUFFMAN_CODES,
  HUFFMAN_LENGTHS,
  huffmanDecode,
  huffmanDecodeString,
  huffmanEncode,
  huffmanEncodedLength,
} from '../../src/http3/qpack/huffman.ts';
import { rng } from '../support/seeded-random.ts';

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
const bytes = (h: string) => Uint8Array.from(Buffer.from(h, 'hex'));


function expectFail(input: Uint8Array, code = QPACK_DECOMPRESSION_FAILED): void {
  assert.throws(() => huffmanDecode(input, code), (e: unknown) => e instanceof H3Error && e.code === code);
}

describe('Huffman code (RFC 7541 §5.2, Appendix B)', () => {
  it('rebuilds the canonical code table: spot checks from Appendix B and a complete prefix code', () => {
    const spot: Record<number, [number, number]> = {
      0: [0x1ff8, 13],
      10: [0x3ffffffc, 30],
      32: [0x14, 6],
      48: [0x0, 5],
      97: [0x3, 5],
      92: [0x7fff0, 19],
      127: [0xffffffc, 28],
      128: [0xfffe6, 20],
      203: [0x7ffffde, 27],
      255: [0x3ffffee, 26],
      256: [0x3fffffff, 30],
    };
    for (const [sym, [code, len]] of Object.entries(spot)) {
      assert.equal(HUFFMAN_CODES[Number(sym)], code, `code of ${sym}`);
      assert.equal(HUFFMAN_LENGTHS[Number(sym)], len, `length of ${sym}`);
    }
    let kraft = 0;
    for (let i = 0; i <= 256; i++) kraft += 2 ** -HUFFMAN_LENGTHS[i];
    assert.equal(kraft, 1);
  });

  it('encodes the RFC 7541 Appendix C examples', () => {
    const cases: Array<[string, string]> = [
      ['www.example.com', 'f1e3c2e5f23a6ba0ab90f4ff'],
      ['no-cache', 'a8eb10649cbf'],
      ['custom-key', '25a849e95ba97d7f'],
      ['custom-value', '25a849e95bb8e8b4bf'],
      ['302', '6402'],
      ['private', 'aec3771a4b'],
      ['Mon, 21 Oct 2013 20:13:21 GMT', 'd07abe941054d444a8200595040b8166e082a62d1bff'],
      ['https://www.example.com', '9d29ad171863c78f0b97c8e9ae82ae43d3'],
    ];
    for (const [text, encoded] of cases) {
      assert.equal(hex(huffmanEncode(Buffer.from(text, 'latin1'))), encoded, text);
      assert.equal(huffmanEncodedLength(text), encoded.length / 2);
      const e = bytes(encoded);
      assert.equal(huffmanDecodeString(e, 0, e.length), text);
    }
  });

  it('round-trips every byte value and random strings', () => {
    const all = Uint8Array.from({ length: 256 }, (_, i) => i);
    assert.deepEqual(huffmanDecode(huffmanEncode(all)), all);
    const r = rng(7);
    for (let i = 0; i < 2000; i++) {
      const len = Math.floor(r() * 40);
      const src = Uint8Array.from({ length: len }, () => Math.floor(r() * 256));
      assert.deepEqual(huffmanDecode(huffmanEncode(src)), src);
    }
    assert.deepEqual(huffmanDecode(new Uint8Array(0)), new Uint8Array(0));
  });

  it('rejects an EOS symbol inside the string', () => {
    expectFail(bytes('ffffffff')); // EOS (30 ones) + 2 bits
    expectFail(bytes('1fffffffff')); // 'a' then EOS
  });

  it('rejects padding longer than 7 bits', () => {
    expectFail(bytes('ff')); // 8 ones, no symbol
    expectFail(bytes('1fff')); // 'a' (00011) + 11 ones
  });

  it('rejects padding that is not the most significant bits of EOS', () => {
    expectFail(bytes('18')); // 'a' (00011) + 000
    expectFail(bytes('1e')); // 'a' + 110
    expectFail(bytes('00')); // '0' (00000) + 000
  });

  it('reports failures with the caller\u2019s error code', () => {
    expectFail(bytes('ff'), QPACK_ENCODER_STREAM_ERROR);
  });
});
