import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { H3Error, H3_INTERNAL_ERROR } from '../../src/http3/errors.ts';
import {
  VARINT_NEED_MORE,
  decodeVarint,
  encodeVarint,
  encodeVarintBigInt,
  readVarint,
  readVarintBigInt,
  varintLength,
  varintSize,
} from '../../src/http3/varint.ts';

const hex = (s: string) => Uint8Array.from(Buffer.from(s, 'hex'));

describe('QUIC varint (RFC 9000 §16)', () => {
  it('round-trips edge values with the shortest length', () => {
    const cases: Array<[number, number]> = [
      [0, 1],
      [63, 1],
      [64, 2],
      [16383, 2],
      [16384, 4],
      [2 ** 30 - 1, 4],
      [2 ** 30, 8],
      [2 ** 32, 8],
      [Number.MAX_SAFE_INTEGER, 8],
    ];
    for (const [value, size] of cases) {
      const bytes = encodeVarint(value);
      assert.equal(bytes.length, size, `size of ${value}`);
      assert.equal(varintSize(value), size);
      assert.equal(varintLength(bytes[0]), size);
      assert.equal(readVarint(bytes, 0), value);
      assert.deepEqual(decodeVarint(bytes), { value, length: size });
    }
  });

  it('decodes the RFC 9000 Appendix A.1 examples', () => {
    assert.equal(readVarintBigInt(hex('c2197c5eff14e88c'), 0), 151288809941952652n);
    assert.equal(readVarint(hex('9d7f3e7d'), 0), 494878333);
    assert.equal(readVarint(hex('7bbd'), 0), 15293);
    assert.equal(readVarint(hex('25'), 0), 37);
    assert.equal(readVarint(hex('4025'), 0), 37); // non-minimal encodings are valid
  });

  it('reports truncation as "need more", at every cut', () => {
    for (const value of [64, 16384, 2 ** 30, 2 ** 40]) {
      const bytes = encodeVarint(value);
      for (let cut = 0; cut < bytes.length; cut++) {
        assert.equal(readVarint(bytes, 0, cut), VARINT_NEED_MORE);
        assert.equal(decodeVarint(bytes.subarray(0, cut)), null);
        assert.equal(readVarintBigInt(bytes, 0, cut), null);
      }
    }
  });

  it('handles the 62-bit maximum exactly and refuses anything larger', () => {
    const max = (1n << 62n) - 1n;
    const bytes = encodeVarintBigInt(max);
    assert.deepEqual(Buffer.from(bytes).toString('hex'), 'ffffffffffffffff');
    assert.equal(readVarintBigInt(bytes, 0), max);
    for (const bad of [1n << 62n, -1n]) {
      assert.throws(() => encodeVarintBigInt(bad), (e: unknown) => e instanceof H3Error && e.code === H3_INTERNAL_ERROR);
    }
    for (const bad of [2 ** 62, -1, 1.5, Number.NaN]) {
      assert.throws(() => encodeVarint(bad), (e: unknown) => e instanceof H3Error && e.code === H3_INTERNAL_ERROR);
    }
  });

  it('reads at an offset and respects the end bound', () => {
    const buf = new Uint8Array([0xaa, 0x40, 0x25, 0xbb]);
    assert.equal(readVarint(buf, 1), 37);
    assert.equal(readVarint(buf, 1, 2), VARINT_NEED_MORE);
    assert.equal(readVarint(buf, 4), VARINT_NEED_MORE);
  });
});
