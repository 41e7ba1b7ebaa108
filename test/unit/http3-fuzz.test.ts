// Random and mutated input into the frame reader and the QPACK decoder: the only exception allowed is H3Error.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { H3ServerConnection } from '../../src/http3/connection.ts';
import { H3Error, h3ErrorName } from '../../src/http3/errors.ts';
import { FrameReader, encodeHeadersFrame, encodeSettingsFrame } from '../../src/http3/frames.ts';
import { QpackDecoder } from '../../src/http3/qpack/decoder.ts';
import { encodeFieldSection } from '../../src/http3/qpack/encoder.ts';
import { huffmanDecode } from '../../src/http3/qpack/huffman.ts';
import { rng } from '../support/seeded-random.ts';


const ITERATIONS = 20_000;

function onlyH3(fn: () => void, seen: Map<string, number>): void {
  try {
    fn();
  } catch (err) {
    if (!(err instanceof H3Error)) throw err;
    assert.ok(h3ErrorName(err.code).startsWith('H3_') || h3ErrorName(err.code).startsWith('QPACK_'));
    seen.set(err.codeName, (seen.get(err.codeName) ?? 0) + 1);
  }
}

const seeds: Uint8Array[] = [
  Uint8Array.from(Buffer.from('3fbd01c00f7777772e6578616d706c652e636f6dc10c2f73616d706c652f70617468', 'hex')),
  Uint8Array.from(Buffer.from('4a637573746f6d2d6b65790c637573746f6d2d76616c7565', 'hex')),
  encodeFieldSection([
    [':method', 'GET'],
    [':path', '/course/view.php?id=42'],
    ['user-agent', 'Mozilla/5.0'],
    ['x-custom', 'value'],
  ]),
  encodeHeadersFrame(encodeFieldSection([[':status', '200']])),
  encodeSettingsFrame([
    [1, 4096],
    [6, 16384],
  ]),
];

function input(r: () => number): Uint8Array {
  if (r() < 0.5) {
    const len = Math.floor(r() * 64);
    return Uint8Array.from({ length: len }, () => Math.floor(r() * 256));
  }
  const base = seeds[Math.floor(r() * seeds.length)].slice();
  const flips = 1 + Math.floor(r() * 4);
  for (let i = 0; i < flips && base.length > 0; i++) base[Math.floor(r() * base.length)] = Math.floor(r() * 256);
  return r() < 0.2 ? base.subarray(0, Math.floor(r() * base.length)) : base;
}

describe('fuzz: malformed input only ever raises H3Error', () => {
  it(`FrameReader, QPACK decoder and Huffman over ${ITERATIONS} seeded inputs`, { timeout: 60_000 }, () => {
    const r = rng(0x5eed);
    const seen = new Map<string, number>();
    let decoder = new QpackDecoder({ maxTableCapacity: 4096, maxBlockedStreams: 4, maxFieldSectionSize: 4096 });
    const started = Date.now();
    for (let i = 0; i < ITERATIONS; i++) {
      const data = input(r);
      onlyH3(() => {
        const reader = new FrameReader(256);
        let pos = 0;
        while (pos < data.length) {
          const n = 1 + Math.floor(r() * 16);
          reader.push(data.subarray(pos, pos + n));
          pos += n;
          while (reader.next() !== null);
        }
        reader.finish();
      }, seen);
      if (i % 200 === 0) {
        decoder = new QpackDecoder({ maxTableCapacity: 4096, maxBlockedStreams: 4, maxFieldSectionSize: 4096 });
      }
      onlyH3(() => decoder.feedEncoderStream(data), seen);
      onlyH3(() => decoder.decodeFieldSection(4 * (i % 64), data), seen);
      onlyH3(() => huffmanDecode(data), seen);
      decoder.takeDecoderStreamBytes();
    }
    assert.ok(Date.now() - started < 60_000);
    // The inputs did reach the error paths (a fuzz loop that never fails proves nothing).
    assert.ok((seen.get('QPACK_DECOMPRESSION_FAILED') ?? 0) > 100);
    assert.ok((seen.get('QPACK_ENCODER_STREAM_ERROR') ?? 0) > 100);
    assert.ok((seen.get('H3_FRAME_ERROR') ?? 0) > 100);
  });
});

describe('fuzz: the connection turns any input into events, never exceptions', () => {
  it('5000 random chunks on random client streams', { timeout: 60_000 }, () => {
    const r = rng(0xc0ffee);
    const codes = new Map<number, number>();
    let conn: H3ServerConnection | null = null;
    let events = 0;
    const handler = {
      onRequest: () => void events++,
      onData: () => void events++,
      onEnd: () => void events++,
      onStreamError: () => void events++,
      onConnectionError: (code: number) => void codes.set(code, (codes.get(code) ?? 0) + 1),
    };
    for (let i = 0; i < 5000; i++) {
      if (conn === null || conn.isClosed || i % 50 === 0) {
        conn = new H3ServerConnection(handler);
        conn.receive(2, Uint8Array.from(Buffer.concat([Buffer.of(0), encodeSettingsFrame([[6, 16384]])])), false);
      }
      const streamId = [0, 4, 8, 6, 10, 14][Math.floor(r() * 6)];
      // Uni streams get a plausible type byte first so the QPACK streams are exercised too.
      const prefix = streamId % 4 === 2 && r() < 0.7 ? Uint8Array.of(Math.floor(r() * 4)) : new Uint8Array(0);
      conn.receive(streamId, Uint8Array.from(Buffer.concat([prefix, input(r)])), r() < 0.1);
      if (r() < 0.05) conn.streamReset(streamId, 0x10c);
      conn.takeOutgoing();
    }
    assert.ok(codes.size > 3, `several connection error codes reached: ${[...codes.keys()].map(h3ErrorName)}`);
    assert.ok(events > 0);
  });
});
