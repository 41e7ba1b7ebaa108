import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  H3Error,
  H3_EXCESSIVE_LOAD,
  H3_FRAME_ERROR,
  H3_FRAME_UNEXPECTED,
  H3_SETTINGS_ERROR,
} from '../../src/http3/errors.ts';
import {
  FRAME_PRIORITY_UPDATE_REQUEST,
  FrameReader,
  type H3Frame,
  encodeCancelPushFrame,
  encodeDataFrameHeader,
  encodeFrame,
  encodeFrameHeader,
  encodeGoawayFrame,
  encodeHeadersFrame,
  encodeMaxPushIdFrame,
  encodeSettingsFrame,
} from '../../src/http3/frames.ts';
import {
  SETTINGS_H3_DATAGRAM,
  SETTINGS_MAX_FIELD_SECTION_SIZE,
  SETTINGS_QPACK_BLOCKED_STREAMS,
  SETTINGS_QPACK_MAX_TABLE_CAPACITY,
  parseSettings,
  toPeerSettings,
} from '../../src/http3/settings.ts';
import { encodeVarint } from '../../src/http3/varint.ts';

function concat(parts: Uint8Array[]): Uint8Array {
  return Uint8Array.from(Buffer.concat(parts));
}

function dataFrame(payload: Uint8Array): Uint8Array {
  return concat([encodeDataFrameHeader(payload.length), payload]);
}

/** Frames in a comparable form; DATA slices are merged per frame so chunking does not matter. */
type Seen = { kind: string; detail: unknown };

function collect(reader: FrameReader, chunks: Uint8Array[]): Seen[] {
  const out: Seen[] = [];
  let data: number[] | null = null;
  for (const chunk of chunks) {
    reader.push(chunk);
    let f: H3Frame | null;
    while ((f = reader.next()) !== null) {
      if (f.kind === 'data') {
        data ??= [];
        for (const b of f.payload) data.push(b);
        if (f.frameEnd) {
          out.push({ kind: 'data', detail: Buffer.from(data).toString('hex') });
          data = null;
        }
        continue;
      }
      const { kind, ...rest } = f;
      const detail = 'payload' in rest ? { ...rest, payload: Buffer.from(rest.payload).toString('hex') } : rest;
      out.push({ kind, detail });
    }
  }
  reader.finish();
  return out;
}

const grease = 0x1f * 7 + 0x21;
const body = Uint8Array.from({ length: 300 }, (_, i) => i & 0xff);
const stream = concat([
  encodeSettingsFrame([
    [SETTINGS_QPACK_MAX_TABLE_CAPACITY, 4096],
    [SETTINGS_MAX_FIELD_SECTION_SIZE, 16384],
    [grease, 5],
  ]),
  encodeHeadersFrame(Uint8Array.of(0, 0, 0xd1)),
  dataFrame(body),
  encodeFrame(grease, Uint8Array.of(1, 2, 3, 4)),
  dataFrame(new Uint8Array(0)),
  encodeGoawayFrame(16384),
  encodeMaxPushIdFrame(9),
  encodeCancelPushFrame(3),
  encodeFrame(FRAME_PRIORITY_UPDATE_REQUEST, concat([encodeVarint(4), Buffer.from('u=1')])),
  encodeFrame(0x5, concat([encodeVarint(2), Uint8Array.of(0, 0)])),
]);

const expected: Seen[] = [
  {
    kind: 'settings',
    detail: {
      settings: [
        [1, 4096],
        [6, 16384],
        [grease, 5],
      ],
    },
  },
  { kind: 'headers', detail: { payload: '0000d1' } },
  { kind: 'data', detail: Buffer.from(body).toString('hex') },
  { kind: 'unknown', detail: { type: grease } },
  { kind: 'data', detail: '' },
  { kind: 'goaway', detail: { id: 16384 } },
  { kind: 'max_push_id', detail: { pushId: 9 } },
  { kind: 'cancel_push', detail: { pushId: 3 } },
  { kind: 'priority_update', detail: { elementId: 4, push: false } },
  { kind: 'push_promise', detail: { pushId: 2, payload: '0000' } },
];

function expectH3(fn: () => unknown, code: number): void {
  assert.throws(fn, (e: unknown) => e instanceof H3Error && e.code === code && e.scope === 'connection');
}

function parseAll(bytes: Uint8Array, max?: number): Seen[] {
  return collect(new FrameReader(max), [bytes]);
}

describe('HTTP/3 frames (RFC 9114 §7)', () => {
  it('parses a sequence of every frame type in one chunk', () => {
    assert.deepEqual(parseAll(stream), expected);
  });

  it('parses the same frames split at every byte boundary', () => {
    for (let cut = 0; cut <= stream.length; cut++) {
      const got = collect(new FrameReader(), [stream.subarray(0, cut), stream.subarray(cut)]);
      assert.deepEqual(got, expected, `cut at ${cut}`);
    }
  });

  it('parses the same frames fed one byte at a time', () => {
    const chunks = Array.from(stream, (b) => Uint8Array.of(b));
    assert.deepEqual(collect(new FrameReader(), chunks), expected);
  });

  it('streams DATA payload slices before the frame is complete, without a size limit', () => {
    const big = new Uint8Array(100_000).fill(7);
    const bytes = dataFrame(big);
    const reader = new FrameReader(1024);
    reader.push(bytes.subarray(0, 1000));
    const first = reader.next();
    assert.ok(first !== null && first.kind === 'data');
    assert.equal(first.payload.length, 1000 - 5); // 1-byte type + 4-byte length
    assert.equal(first.frameEnd, false);
    assert.equal(first.payload.buffer, bytes.buffer, 'slice of the pushed chunk, not a copy');
    assert.equal(reader.next(), null);
    assert.throws(() => reader.finish(), (e: unknown) => e instanceof H3Error && e.code === H3_FRAME_ERROR);
    reader.push(bytes.subarray(1000));
    const rest = reader.next();
    assert.ok(rest !== null && rest.kind === 'data' && rest.frameEnd);
    assert.equal(rest.payload.length, 100_000 - 995);
    reader.finish();
  });

  it('skips unknown frames of any size without buffering them', () => {
    const reader = new FrameReader(16);
    reader.push(encodeFrameHeader(grease, 1_000_000));
    assert.deepEqual(reader.next(), { kind: 'unknown', type: grease });
    reader.push(new Uint8Array(1_000_000));
    assert.equal(reader.next(), null);
    assert.equal(reader.atFrameBoundary, true);
  });

  it('limits non-DATA frame payloads (H3_EXCESSIVE_LOAD)', () => {
    expectH3(() => parseAll(encodeHeadersFrame(new Uint8Array(101)), 100), H3_EXCESSIVE_LOAD);
    assert.equal(parseAll(encodeHeadersFrame(new Uint8Array(100)), 100).length, 1);
  });

  it('rejects HTTP/2-only frame types (H3_FRAME_UNEXPECTED)', () => {
    for (const type of [0x2, 0x6, 0x8, 0x9]) expectH3(() => parseAll(encodeFrame(type, new Uint8Array(1))), H3_FRAME_UNEXPECTED);
  });

  it('rejects malformed payloads and streams ending inside a frame (H3_FRAME_ERROR)', () => {
    expectH3(() => parseAll(encodeFrame(0x7, Uint8Array.of(4, 0))), H3_FRAME_ERROR); // GOAWAY with a trailing byte
    expectH3(() => parseAll(encodeFrame(0x7, new Uint8Array(0))), H3_FRAME_ERROR);
    expectH3(() => parseAll(encodeFrame(0x7, Uint8Array.of(0x40))), H3_FRAME_ERROR); // truncated varint
    expectH3(() => parseAll(encodeFrame(0xd, Uint8Array.of(0x80, 1))), H3_FRAME_ERROR);
    expectH3(() => parseAll(encodeFrame(0x4, Uint8Array.of(0x01))), H3_FRAME_ERROR); // setting without a value
    expectH3(() => parseAll(encodeFrame(FRAME_PRIORITY_UPDATE_REQUEST, new Uint8Array(0))), H3_FRAME_ERROR);
    const headers = encodeHeadersFrame(Uint8Array.of(0, 0, 0xd1));
    for (let cut = 1; cut < headers.length; cut++) {
      expectH3(() => parseAll(headers.subarray(0, cut)), H3_FRAME_ERROR);
    }
  });

  it('validates SETTINGS (H3_SETTINGS_ERROR)', () => {
    for (const id of [0x2, 0x3, 0x4, 0x5]) {
      expectH3(() => parseSettings(concat([encodeVarint(id), encodeVarint(0)])), H3_SETTINGS_ERROR);
    }
    expectH3(() => parseSettings(Uint8Array.of(0x06, 0x01, 0x06, 0x02)), H3_SETTINGS_ERROR);
    expectH3(() => parseSettings(Uint8Array.of(0x08, 0x02)), H3_SETTINGS_ERROR);
    const list = parseSettings(
      concat([
        encodeVarint(SETTINGS_QPACK_BLOCKED_STREAMS),
        encodeVarint(100),
        encodeVarint(SETTINGS_H3_DATAGRAM),
        encodeVarint(1),
      ]),
    );
    const s = toPeerSettings(list);
    assert.equal(s.qpackBlockedStreams, 100);
    assert.equal(s.h3Datagram, true);
    assert.equal(s.qpackMaxTableCapacity, 0);
    assert.equal(s.maxFieldSectionSize, Infinity);
  });

  it('encodes frame headers with minimal varints', () => {
    assert.deepEqual([...encodeDataFrameHeader(5)], [0, 5]);
    assert.deepEqual([...encodeDataFrameHeader(70000)], [0, 0x80, 0x01, 0x11, 0x70]);
    assert.deepEqual([...encodeGoawayFrame(4)], [7, 1, 4]);
    assert.deepEqual([...encodeSettingsFrame([[6, 16384]])], [4, 5, 6, 0x80, 0, 0x40, 0]);
  });
});
