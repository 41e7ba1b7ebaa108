import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type H3ConnectionOptions, type H3Events, H3ServerConnection } from '../../src/http3/connection.ts';
import {
  H3Error,
  H3_CLOSED_CRITICAL_STREAM,
  H3_EXCESSIVE_LOAD,
  H3_FRAME_ERROR,
  H3_FRAME_UNEXPECTED,
  H3_ID_ERROR,
  H3_MESSAGE_ERROR,
  H3_MISSING_SETTINGS,
  H3_REQUEST_INCOMPLETE,
  H3_REQUEST_REJECTED,
  H3_SETTINGS_ERROR,
  H3_STREAM_CREATION_ERROR,
  QPACK_DECODER_STREAM_ERROR,
  QPACK_DECOMPRESSION_FAILED,
} from '../../src/http3/errors.ts';
import {
  FrameReader,
  type H3Frame,
  encodeDataFrameHeader,
  encodeFrame,
  encodeGoawayFrame,
  encodeHeadersFrame,
  encodeMaxPushIdFrame,
  encodeSettingsFrame,
} from '../../src/http3/frames.ts';
import { QpackDecoder } from '../../src/http3/qpack/decoder.ts';
import { encodeFieldSection } from '../../src/http3/qpack/encoder.ts';

type Fields = Array<[string, string]>;

type Event =
  | ['request', number, Fields]
  | ['data', number, string]
  | ['end', number, Fields | undefined]
  | ['streamError', number, number]
  | ['streamError', number, number, number]
  | ['connectionError', number]
  | ['goaway', number];

class Recorder implements H3Events {
  events: Event[] = [];
  onRequest(req: { streamId: number; headers: Fields }): void {
    this.events.push(['request', req.streamId, req.headers]);
  }
  onData(streamId: number, chunk: Uint8Array): void {
    // Adjacent chunks of one stream are merged so tests do not depend on chunking.
    const last = this.events.at(-1);
    const text = Buffer.from(chunk).toString('latin1');
    if (last !== undefined && last[0] === 'data' && last[1] === streamId) last[2] += text;
    else this.events.push(['data', streamId, text]);
  }
  onEnd(streamId: number, trailers?: Fields): void {
    this.events.push(['end', streamId, trailers]);
  }
  onStreamError(streamId: number, code: number, _reason: string, status?: number): void {
    this.events.push(status === undefined ? ['streamError', streamId, code] : ['streamError', streamId, code, status]);
  }
  onConnectionError(code: number): void {
    this.events.push(['connectionError', code]);
  }
  onGoaway(id: number): void {
    this.events.push(['goaway', id]);
  }
}

const cat = (...parts: Uint8Array[]) => Uint8Array.from(Buffer.concat(parts));
const CLIENT_CONTROL = 2;
const CLIENT_ENCODER = 6;
const CLIENT_DECODER = 10;

function controlStream(settings: Array<[number, number]> = [[6, 16384]]): Uint8Array {
  return cat(Uint8Array.of(0x00), encodeSettingsFrame(settings));
}

function headers(fields: Fields): Uint8Array {
  return encodeHeadersFrame(encodeFieldSection(fields));
}

function data(text: string): Uint8Array {
  const payload = Buffer.from(text, 'latin1');
  return cat(encodeDataFrameHeader(payload.length), payload);
}

const GET: Fields = [
  [':method', 'GET'],
  [':scheme', 'https'],
  [':authority', 'moodle.example'],
  [':path', '/login/index.php'],
  ['user-agent', 'test'],
];

function post(length: number): Fields {
  return [
    [':method', 'POST'],
    [':scheme', 'https'],
    [':authority', 'moodle.example'],
    [':path', '/login/index.php'],
    ['content-type', 'application/x-www-form-urlencoded'],
    ['content-length', String(length)],
  ];
}

function setup(opts?: H3ConnectionOptions): { conn: H3ServerConnection; rec: Recorder } {
  const rec = new Recorder();
  const conn = new H3ServerConnection(rec, opts);
  conn.start();
  conn.takeOutgoing();
  conn.receive(CLIENT_CONTROL, controlStream(), false);
  return { conn, rec };
}

function lastCode(rec: Recorder): Event | undefined {
  return rec.events.at(-1);
}

function framesOn(out: Array<{ streamId: number; data: Uint8Array }>, streamId: number, skipType: boolean): H3Frame[] {
  const bytes = cat(...out.filter((o) => o.streamId === streamId).map((o) => o.data));
  const reader = new FrameReader();
  reader.push(skipType ? bytes.subarray(1) : bytes);
  const frames: H3Frame[] = [];
  let f: H3Frame | null;
  while ((f = reader.next()) !== null) frames.push(f);
  return frames;
}

describe('H3ServerConnection: streams we open', () => {
  it('start() queues the control stream with SETTINGS and both QPACK stream types', () => {
    const conn = new H3ServerConnection(new Recorder());
    conn.start();
    const out = conn.takeOutgoing();
    assert.deepEqual(
      out.map((o) => [o.streamId, o.data[0], o.fin]),
      [
        [3, 0x00, false],
        [7, 0x02, false],
        [11, 0x03, false],
      ],
    );
    const frames = framesOn(out, 3, true);
    assert.equal(frames.length, 1);
    assert.deepEqual(frames[0], {
      kind: 'settings',
      settings: [
        [0x1, 4096],
        [0x6, 16384],
        [0x7, 16],
      ],
    });
    assert.deepEqual(conn.takeOutgoing(), []);
  });

  it('advertises configured limits', () => {
    const conn = new H3ServerConnection(new Recorder(), { maxFieldSectionSize: 8000, qpackMaxTableCapacity: 0, qpackBlockedStreams: 0 });
    conn.start();
    const frames = framesOn(conn.takeOutgoing(), 3, true);
    assert.deepEqual(frames[0], {
      kind: 'settings',
      settings: [
        [0x1, 0],
        [0x6, 8000],
        [0x7, 0],
      ],
    });
  });
});

describe('H3ServerConnection: requests', () => {
  it('delivers a full request: onRequest, onData, onEnd', () => {
    const { conn, rec } = setup();
    conn.receive(0, cat(headers(post(11)), data('hello '), data('world')), true);
    assert.deepEqual(rec.events, [
      ['request', 0, post(11)],
      ['data', 0, 'hello world'],
      ['end', 0, undefined],
    ]);
    assert.equal(conn.peerSettings.maxFieldSectionSize, 16384);
  });

  it('gives the same events when the request stream arrives one byte at a time', () => {
    const { conn, rec } = setup();
    const bytes = cat(headers(post(11)), data('hello '), encodeFrame(0x21, Uint8Array.of(1, 2)), data('world'));
    for (let i = 0; i < bytes.length; i++) conn.receive(0, bytes.subarray(i, i + 1), false);
    conn.receive(0, new Uint8Array(0), true);
    assert.deepEqual(rec.events, [
      ['request', 0, post(11)],
      ['data', 0, 'hello world'],
      ['end', 0, undefined],
    ]);
  });

  it('serves requests that arrive before the client control stream', () => {
    const rec = new Recorder();
    const conn = new H3ServerConnection(rec);
    conn.receive(0, headers(GET), true);
    assert.deepEqual(rec.events, [
      ['request', 0, GET],
      ['end', 0, undefined],
    ]);
    assert.equal(conn.takeOutgoing()[0].streamId, 3, 'receive() starts the connection if start() was not called');
  });

  it('delivers trailers with onEnd', () => {
    const { conn, rec } = setup();
    const trailers: Fields = [['x-checksum', 'abc']];
    conn.receive(0, cat(headers(post(2)), data('ok'), headers(trailers)), false);
    assert.deepEqual(rec.events.at(-1), ['data', 0, 'ok']);
    conn.receive(0, new Uint8Array(0), true);
    assert.deepEqual(rec.events.at(-1), ['end', 0, trailers]);
  });

  it('encodes responses: HEADERS with :status, DATA without copying, trailers', () => {
    const { conn } = setup();
    const frame = conn.encodeResponseHeaders(0, 200, [
      ['Content-Type', 'text/html; charset=utf-8'],
      ['Connection', 'close'],
      ['Transfer-Encoding', 'chunked'],
      ['x-moodle', 'yes'],
    ]);
    const reader = new FrameReader();
    reader.push(frame);
    const f = reader.next();
    assert.ok(f !== null && f.kind === 'headers');
    const dec = new QpackDecoder({ maxTableCapacity: 0, maxBlockedStreams: 0, maxFieldSectionSize: 65536 });
    assert.deepEqual(dec.decodeFieldSection(0, f.payload), [
      [':status', '200'],
      ['content-type', 'text/html; charset=utf-8'],
      ['x-moodle', 'yes'],
    ]);
    const chunk = Buffer.from('body');
    const [hdr, payload] = conn.encodeData(chunk);
    assert.deepEqual([...hdr], [0x00, 0x04]);
    assert.equal(payload, chunk);
    const t = new FrameReader();
    t.push(conn.encodeTrailers(0, [['grpc-status', '0']]));
    const tf = t.next();
    assert.ok(tf !== null && tf.kind === 'headers');
    assert.deepEqual(dec.decodeFieldSection(0, tf.payload), [['grpc-status', '0']]);
  });

  it('refuses to encode an invalid status with a stream-scoped H3Error', () => {
    const { conn } = setup();
    assert.throws(
      () => conn.encodeResponseHeaders(0, 42, []),
      (e: unknown) => e instanceof H3Error && e.scope === 'stream',
    );
  });

  it('ignores unknown frame types on request streams', () => {
    const { conn, rec } = setup();
    conn.receive(0, cat(encodeFrame(0x21, Uint8Array.of(9)), headers(GET), encodeFrame(0x1f * 3 + 0x21, new Uint8Array(0))), true);
    assert.deepEqual(rec.events, [
      ['request', 0, GET],
      ['end', 0, undefined],
    ]);
  });
});

describe('H3ServerConnection: QPACK dynamic table from the client', () => {
  // Client encoder stream: type 0x02, Set Dynamic Table Capacity 220, insert :authority=www.example.com and
  // :path=/sample/path (RFC 9204 B.2).
  const encoderStream = Uint8Array.from(
    Buffer.from('02' + '3fbd01c00f7777772e6578616d706c652e636f6dc10c2f73616d706c652f70617468', 'hex'),
  );
  // RIC 2 encoded for MaxEntries 128 (capacity 4096): 2 % 256 + 1 = 3; Base 2; then :method GET, :scheme https,
  // dynamic relative 1 (:authority) and relative 0 (:path).
  const section = Uint8Array.from(Buffer.from('0300' + 'd1' + 'd7' + '81' + '80', 'hex'));
  const expected: Fields = [
    [':method', 'GET'],
    [':scheme', 'https'],
    [':authority', 'www.example.com'],
    [':path', '/sample/path'],
  ];

  it('decodes sections that reference the dynamic table and acknowledges them', () => {
    const { conn, rec } = setup();
    conn.receive(CLIENT_ENCODER, encoderStream, false);
    const increments = conn.takeOutgoing();
    assert.deepEqual(increments.map((o) => [o.streamId, Buffer.from(o.data).toString('hex')]), [[11, '02']]);
    conn.receive(0, encodeHeadersFrame(section), true);
    assert.deepEqual(rec.events, [
      ['request', 0, expected],
      ['end', 0, undefined],
    ]);
    const acks = conn.takeOutgoing();
    assert.deepEqual(acks.map((o) => [o.streamId, Buffer.from(o.data).toString('hex')]), [[11, '80']]);
  });

  it('holds a blocked request (and its body) until the inserts arrive', () => {
    const { conn, rec } = setup();
    const withBody = cat(encodeHeadersFrame(section), data('late body'));
    conn.receive(4, withBody.subarray(0, 6), false);
    conn.receive(4, withBody.subarray(6), true);
    assert.deepEqual(rec.events, [], 'blocked: no events yet');
    // Encoder stream in two pieces; the second completes the inserts.
    conn.receive(CLIENT_ENCODER, encoderStream.subarray(0, 10), false);
    assert.deepEqual(rec.events, []);
    conn.receive(CLIENT_ENCODER, encoderStream.subarray(10), false);
    assert.deepEqual(rec.events, [
      ['request', 4, expected],
      ['data', 4, 'late body'],
      ['end', 4, undefined],
    ]);
    const out = conn.takeOutgoing().map((o) => [o.streamId, Buffer.from(o.data).toString('hex')]);
    assert.deepEqual(out, [[11, '84']], 'Section Acknowledgment for stream 4');
  });

  it('sends Stream Cancellation when a blocked request stream is reset', () => {
    const { conn, rec } = setup();
    conn.receive(8, encodeHeadersFrame(section), false);
    conn.streamReset(8, 0x10c);
    const out = conn.takeOutgoing().map((o) => [o.streamId, Buffer.from(o.data).toString('hex')]);
    assert.deepEqual(out, [[11, '48']]);
    conn.receive(CLIENT_ENCODER, encoderStream, false);
    assert.deepEqual(rec.events, [], 'the cancelled request never surfaces');
  });

  it('closes the connection when more streams block than allowed', () => {
    const { conn, rec } = setup({ qpackBlockedStreams: 1 });
    conn.receive(0, encodeHeadersFrame(section), false);
    conn.receive(4, encodeHeadersFrame(section), false);
    assert.deepEqual(rec.events, [['connectionError', QPACK_DECOMPRESSION_FAILED]]);
  });

  it('refuses a stream with too much data behind a blocked section', () => {
    const { conn, rec } = setup();
    conn.receive(0, encodeHeadersFrame(section), false);
    const chunk = new Uint8Array(300_000);
    for (let i = 0; i < 4; i++) conn.receive(0, chunk, false);
    assert.deepEqual(rec.events, [['streamError', 0, H3_EXCESSIVE_LOAD]]);
    assert.equal(conn.stats.blockedBufferOverflows, 1);
  });
});

describe('H3ServerConnection: control and unidirectional stream rules', () => {
  function fresh(): { conn: H3ServerConnection; rec: Recorder } {
    const rec = new Recorder();
    const conn = new H3ServerConnection(rec);
    conn.start();
    return { conn, rec };
  }

  it('requires SETTINGS first on the control stream (H3_MISSING_SETTINGS)', () => {
    for (const first of [encodeGoawayFrame(0), encodeFrame(0x21, new Uint8Array(0)), encodeMaxPushIdFrame(1)]) {
      const { conn, rec } = fresh();
      conn.receive(CLIENT_CONTROL, cat(Uint8Array.of(0), first), false);
      assert.deepEqual(rec.events, [['connectionError', H3_MISSING_SETTINGS]]);
    }
  });

  it('accepts one control stream only (H3_STREAM_CREATION_ERROR)', () => {
    const { conn, rec } = setup();
    conn.receive(14, controlStream(), false);
    assert.deepEqual(rec.events, [['connectionError', H3_STREAM_CREATION_ERROR]]);
  });

  it('accepts one QPACK encoder and one decoder stream', () => {
    for (const type of [0x02, 0x03]) {
      const { conn, rec } = setup();
      conn.receive(CLIENT_ENCODER, Uint8Array.of(type), false);
      conn.receive(CLIENT_DECODER, Uint8Array.of(type), false);
      assert.deepEqual(rec.events, [['connectionError', H3_STREAM_CREATION_ERROR]]);
    }
  });

  it('rejects a second SETTINGS and request frames on the control stream (H3_FRAME_UNEXPECTED)', () => {
    for (const frame of [encodeSettingsFrame([]), headers(GET), data('x'), encodeFrame(0x5, Uint8Array.of(0))]) {
      const { conn, rec } = setup();
      conn.receive(CLIENT_CONTROL, frame, false);
      assert.deepEqual(rec.events, [['connectionError', H3_FRAME_UNEXPECTED]]);
    }
  });

  it('rejects bad SETTINGS (H3_SETTINGS_ERROR)', () => {
    for (const settings of [[[0x2, 1]], [[0x6, 1], [0x6, 2]]] as Array<Array<[number, number]>>) {
      const { conn, rec } = fresh();
      conn.receive(CLIENT_CONTROL, controlStream(settings), false);
      assert.deepEqual(rec.events, [['connectionError', H3_SETTINGS_ERROR]]);
    }
  });

  it('treats closing or resetting a critical stream as H3_CLOSED_CRITICAL_STREAM', () => {
    let s = setup();
    s.conn.receive(CLIENT_CONTROL, new Uint8Array(0), true);
    assert.deepEqual(s.rec.events, [['connectionError', H3_CLOSED_CRITICAL_STREAM]]);
    s = setup();
    s.conn.streamReset(CLIENT_CONTROL, 0x100);
    assert.deepEqual(s.rec.events, [['connectionError', H3_CLOSED_CRITICAL_STREAM]]);
    for (const type of [0x02, 0x03]) {
      s = setup();
      s.conn.receive(CLIENT_ENCODER, Uint8Array.of(type), true);
      assert.deepEqual(s.rec.events, [['connectionError', H3_CLOSED_CRITICAL_STREAM]]);
      s = setup();
      s.conn.receive(CLIENT_ENCODER, Uint8Array.of(type), false);
      s.conn.streamReset(CLIENT_ENCODER, 0x100);
      assert.deepEqual(s.rec.events, [['connectionError', H3_CLOSED_CRITICAL_STREAM]]);
    }
  });

  it('refuses push streams from a client (H3_STREAM_CREATION_ERROR)', () => {
    const { conn, rec } = setup();
    conn.receive(CLIENT_ENCODER, Uint8Array.of(0x01, 0x00), false);
    assert.deepEqual(rec.events, [['connectionError', H3_STREAM_CREATION_ERROR]]);
  });

  it('ignores unknown stream types and asks the caller to stop them', () => {
    const { conn, rec } = setup();
    // Reserved type 0x1f * 2 + 0x21 = 0x5f, a 2-byte varint, split across calls.
    conn.receive(CLIENT_ENCODER, Uint8Array.of(0x40), false);
    conn.receive(CLIENT_ENCODER, Uint8Array.of(0x5f, 1, 2, 3), false);
    conn.receive(CLIENT_ENCODER, Uint8Array.of(4, 5), true);
    assert.deepEqual(rec.events, [['streamError', CLIENT_ENCODER, H3_STREAM_CREATION_ERROR]]);
    conn.receive(0, headers(GET), true);
    assert.equal(rec.events.at(-1)?.[0], 'end', 'connection still serves requests');
  });

  it('tolerates a unidirectional stream that closes before its type', () => {
    const { conn, rec } = setup();
    conn.receive(CLIENT_ENCODER, new Uint8Array(0), true);
    assert.deepEqual(rec.events, []);
  });

  it('checks GOAWAY, MAX_PUSH_ID, CANCEL_PUSH and PRIORITY_UPDATE ids on the control stream', () => {
    let s = setup();
    s.conn.receive(CLIENT_CONTROL, cat(encodeGoawayFrame(8), encodeGoawayFrame(4)), false);
    assert.deepEqual(s.rec.events, [
      ['goaway', 8],
      ['goaway', 4],
    ]);
    s.conn.receive(CLIENT_CONTROL, encodeGoawayFrame(12), false);
    assert.deepEqual(s.rec.events.at(-1), ['connectionError', H3_ID_ERROR]);
    s = setup();
    s.conn.receive(CLIENT_CONTROL, cat(encodeMaxPushIdFrame(5), encodeMaxPushIdFrame(4)), false);
    assert.deepEqual(s.rec.events, [['connectionError', H3_ID_ERROR]]);
    s = setup();
    s.conn.receive(CLIENT_CONTROL, encodeFrame(0x3, Uint8Array.of(0)), false); // CANCEL_PUSH without MAX_PUSH_ID
    assert.deepEqual(s.rec.events, [['connectionError', H3_ID_ERROR]]);
    s = setup();
    s.conn.receive(CLIENT_CONTROL, encodeFrame(0xf0700, cat(Uint8Array.of(4), Buffer.from('u=2'))), false);
    assert.deepEqual(s.rec.events, [], 'PRIORITY_UPDATE is parsed and ignored');
    s.conn.receive(CLIENT_CONTROL, encodeFrame(0xf0700, Uint8Array.of(2)), false);
    assert.deepEqual(s.rec.events, [['connectionError', H3_ID_ERROR]]);
  });

  it('validates the client QPACK decoder stream (our encoder never inserts)', () => {
    let s = setup();
    s.conn.receive(CLIENT_DECODER, Uint8Array.of(0x03, 0x44), false); // Stream Cancellation (stream 4)
    assert.deepEqual(s.rec.events, []);
    s.conn.receive(CLIENT_DECODER, Uint8Array.of(0x80), false); // Section Acknowledgment
    assert.deepEqual(s.rec.events, [['connectionError', QPACK_DECODER_STREAM_ERROR]]);
    s = setup();
    s.conn.receive(CLIENT_DECODER, Uint8Array.of(0x03, 0x01), false); // Insert Count Increment
    assert.deepEqual(s.rec.events, [['connectionError', QPACK_DECODER_STREAM_ERROR]]);
  });
});

describe('H3ServerConnection: request stream rules', () => {
  it('rejects DATA before HEADERS (H3_FRAME_UNEXPECTED)', () => {
    const { conn, rec } = setup();
    conn.receive(0, data('x'), false);
    assert.deepEqual(rec.events, [['connectionError', H3_FRAME_UNEXPECTED]]);
  });

  it('rejects control frames on a request stream (H3_FRAME_UNEXPECTED)', () => {
    for (const frame of [
      encodeSettingsFrame([]),
      encodeGoawayFrame(0),
      encodeMaxPushIdFrame(0),
      encodeFrame(0x3, Uint8Array.of(0)),
      encodeFrame(0x5, Uint8Array.of(0, 0, 0)),
      encodeFrame(0xf0700, Uint8Array.of(0)),
    ]) {
      const { conn, rec } = setup();
      conn.receive(0, cat(headers(GET), frame), false);
      assert.deepEqual(rec.events.at(-1), ['connectionError', H3_FRAME_UNEXPECTED]);
    }
  });

  it('rejects frames after trailers (H3_FRAME_UNEXPECTED)', () => {
    const { conn, rec } = setup();
    conn.receive(0, cat(headers(GET), headers([['x-t', '1']]), data('late')), false);
    assert.deepEqual(rec.events.at(-1), ['connectionError', H3_FRAME_UNEXPECTED]);
  });

  it('rejects a stream that ends inside a frame (H3_FRAME_ERROR)', () => {
    const { conn, rec } = setup();
    const bytes = cat(headers(GET), data('abcdef'));
    conn.receive(0, bytes.subarray(0, bytes.length - 2), true);
    assert.deepEqual(rec.events.at(-1), ['connectionError', H3_FRAME_ERROR]);
  });

  it('resets a stream that ends without headers (H3_REQUEST_INCOMPLETE)', () => {
    const { conn, rec } = setup();
    conn.receive(0, encodeFrame(0x21, new Uint8Array(0)), true);
    assert.deepEqual(rec.events, [['streamError', 0, H3_REQUEST_INCOMPLETE]]);
  });

  it('checks content-length against the DATA received', () => {
    let s = setup();
    s.conn.receive(0, cat(headers(post(10)), data('hello')), true);
    assert.deepEqual(s.rec.events, [
      ['request', 0, post(10)],
      ['data', 0, 'hello'],
      ['streamError', 0, H3_MESSAGE_ERROR],
    ]);
    s = setup();
    s.conn.receive(0, cat(headers(post(2)), data('hello')), false);
    assert.deepEqual(s.rec.events, [
      ['request', 0, post(2)],
      ['streamError', 0, H3_MESSAGE_ERROR],
    ]);
    s.conn.receive(0, data('more'), true);
    assert.equal(s.rec.events.length, 2, 'a failed stream is ignored afterwards');
  });

  it('enforces the header list size (name + value + 32 per field): a stream error answered with 431', () => {
    const { conn, rec } = setup({ maxFieldSectionSize: 400 });
    const big: Fields = [...GET, ['x-big', 'a'.repeat(300)]];
    conn.receive(0, headers(big), true);
    assert.deepEqual(rec.events, [['streamError', 0, H3_MESSAGE_ERROR, 431]]);
    conn.receive(4, headers(GET), true);
    assert.deepEqual(rec.events.at(-1), ['end', 4, undefined]);
  });

  it('reports each malformed request as H3_MESSAGE_ERROR on that stream only', () => {
    const base = (extra: Fields = []): Fields => [...GET, ...extra];
    const noPseudo = (name: string): Fields => GET.filter(([n]) => n !== name);
    const malformed: Array<[string, Fields]> = [
      ['uppercase name', base([['User-Agent2', 'x']])],
      ['pseudo after regular', [...GET.slice(0, 3), ['accept', '*/*'], [':path', '/']]],
      ['unknown pseudo', base().toSpliced(1, 0, [':foo', 'bar'])],
      ['duplicate pseudo', base().toSpliced(1, 0, [':method', 'GET'])],
      ['response pseudo', base().toSpliced(1, 0, [':status', '200'])],
      ['extended CONNECT not enabled', base().toSpliced(1, 0, [':protocol', 'websocket'])],
      ['missing :method', noPseudo(':method')],
      ['missing :scheme', noPseudo(':scheme')],
      ['missing :path', noPseudo(':path')],
      ['missing authority', noPseudo(':authority')],
      ['empty :path', GET.map(([n, v]) => [n, n === ':path' ? '' : v] as [string, string])],
      ['relative :path', GET.map(([n, v]) => [n, n === ':path' ? 'index.php' : v] as [string, string])],
      ['authority != host', base([['host', 'other.example']])],
      ['connection', base([['connection', 'keep-alive']])],
      ['keep-alive', base([['keep-alive', 'timeout=5']])],
      ['proxy-connection', base([['proxy-connection', 'close']])],
      ['transfer-encoding', base([['transfer-encoding', 'chunked']])],
      ['upgrade', base([['upgrade', 'websocket']])],
      ['te other than trailers', base([['te', 'gzip']])],
      ['NUL in value', base([['x-a', 'a\u0000b']])],
      ['CR in value', base([['x-a', 'a\rb']])],
      ['LF in value', base([['x-a', 'a\nb']])],
      ['leading space', base([['x-a', ' a']])],
      ['trailing tab', base([['x-a', 'a\t']])],
      ['space in name', base([['x a', 'b']])],
      ['empty name', base([['', 'b']])],
      ['bad content-length', base([['content-length', '12a']])],
      ['conflicting content-length', base([['content-length', '1'], ['content-length', '2']])],
      ['CONNECT with :path', [[':method', 'CONNECT'], [':authority', 'a:443'], [':path', '/']]],
      ['CONNECT without :authority', [[':method', 'CONNECT']]],
      // Stricter than RFC 9114 §4.2 where forwarding would fail later (RFC 9110 §5.5, RFC 3986).
      ['control character in a value', base([['x-a', 'a\u0001b']])],
      ['DEL in a value', base([['x-a', 'a\u007fb']])],
      ['space in :path', GET.map(([n, v]) => [n, n === ':path' ? '/a b' : v] as [string, string])],
      ['request line smuggled in :path', GET.map(([n, v]) => [n, n === ':path' ? '/a HTTP/1.1\r\nX: y' : v] as [string, string])],
      ['tab in :path', GET.map(([n, v]) => [n, n === ':path' ? '/a\tb' : v] as [string, string])],
      ['control character in :path', GET.map(([n, v]) => [n, n === ':path' ? '/a\u0001' : v] as [string, string])],
      ['DEL in :path', GET.map(([n, v]) => [n, n === ':path' ? '/a\u007f' : v] as [string, string])],
      ['non-ASCII octet in :path', GET.map(([n, v]) => [n, n === ':path' ? '/caf\u00e9' : v] as [string, string])],
      ['* :path for GET', GET.map(([n, v]) => [n, n === ':path' ? '*' : v] as [string, string])],
      ['userinfo in :authority', GET.map(([n, v]) => [n, n === ':authority' ? 'user:pw@moodle.example' : v] as [string, string])],
      ['space in :authority', GET.map(([n, v]) => [n, n === ':authority' ? 'moodle .example' : v] as [string, string])],
      ['slash in :authority', GET.map(([n, v]) => [n, n === ':authority' ? 'moodle.example/x' : v] as [string, string])],
      ['empty :authority', GET.map(([n, v]) => [n, n === ':authority' ? '' : v] as [string, string])],
      ['invalid host without :authority', noPseudo(':authority').concat([['host', 'a b']])],
      ['empty host', base([['host', '']])],
      ['duplicate host', noPseudo(':authority').concat([['host', 'moodle.example'], ['host', 'moodle.example']])],
      ['unknown :scheme', GET.map(([n, v]) => [n, n === ':scheme' ? 'ftp' : v] as [string, string])],
      ['empty :scheme', GET.map(([n, v]) => [n, n === ':scheme' ? '' : v] as [string, string])],
      ['empty :method', GET.map(([n, v]) => [n, n === ':method' ? '' : v] as [string, string])],
      ['method with a space', GET.map(([n, v]) => [n, n === ':method' ? 'G ET' : v] as [string, string])],
    ];
    for (const [why, fields] of malformed) {
      const { conn, rec } = setup();
      conn.receive(0, headers(fields), true);
      assert.deepEqual(rec.events, [['streamError', 0, H3_MESSAGE_ERROR]], why);
      assert.equal(conn.isClosed, false, why);
    }
  });

  it('accepts the valid edge cases of the same rules', () => {
    const valid: Fields[] = [
      [...GET, ['te', 'trailers']],
      [...GET, ['host', 'moodle.example']],
      GET.filter(([n]) => n !== ':authority').concat([['host', 'moodle.example']]),
      [[':method', 'CONNECT'], [':authority', 'backend:443']],
      [[':method', 'OPTIONS'], [':scheme', 'https'], [':authority', 'a'], [':path', '*']],
      [...GET, ['content-length', '0'], ['content-length', '0']],
      [...GET, ['x-empty', ''], ['x-inner', 'a b\tc']],
      GET.map(([n, v]) => [n, n === ':scheme' ? 'http' : v] as [string, string]),
      GET.map(([n, v]) => [n, n === ':authority' ? '[2001:db8::1]:9443' : v] as [string, string]),
      GET.map(([n, v]) => [n, n === ':path' ? "/a%20b/c;d?e=f&g=h+i~j!$'()*,:@" : v] as [string, string]),
      [...GET, ['x-latin1', 'caf\u00e9']],
    ];
    for (const fields of valid) {
      const { conn, rec } = setup();
      conn.receive(0, headers(fields), true);
      assert.deepEqual(rec.events, [
        ['request', 0, fields],
        ['end', 0, undefined],
      ]);
    }
  });

  it('extended CONNECT (RFC 9220): offered in SETTINGS and accepted only with enableConnectProtocol, and then only as RFC 8441 §4 shapes it', () => {
    const WS: Fields = [
      [':method', 'CONNECT'],
      [':protocol', 'websocket'],
      [':scheme', 'https'],
      [':authority', 'moodle.example'],
      [':path', '/chat'],
      ['sec-websocket-version', '13'],
    ];
    // Offered: SETTINGS_ENABLE_CONNECT_PROTOCOL = 1 after our other settings.
    const on = new H3ServerConnection(new Recorder(), { enableConnectProtocol: true });
    on.start();
    assert.deepEqual(framesOn(on.takeOutgoing(), 3, true)[0], {
      kind: 'settings',
      settings: [
        [0x1, 4096],
        [0x6, 16384],
        [0x7, 16],
        [0x8, 1],
      ],
    });
    // Accepted, and the stream stays open for DATA both ways.
    const ok = setup({ enableConnectProtocol: true });
    ok.conn.receive(0, cat(headers(WS), data('frame bytes')), false);
    assert.deepEqual(ok.rec.events, [
      ['request', 0, WS],
      ['data', 0, 'frame bytes'],
    ]);
    // Not offered (the default): :protocol is malformed, as before.
    const off = setup();
    off.conn.receive(0, headers(WS), false);
    assert.deepEqual(off.rec.events, [['streamError', 0, H3_MESSAGE_ERROR]]);
    const without = (name: string): Fields => WS.filter(([n]) => n !== name);
    const bad: Array<[string, Fields]> = [
      [':protocol on GET', WS.map(([n, v]) => [n, n === ':method' ? 'GET' : v] as [string, string])],
      ['extended CONNECT without :scheme', without(':scheme')],
      ['extended CONNECT without :path', without(':path')],
      ['extended CONNECT without :authority', without(':authority')],
      ['duplicate :protocol', WS.toSpliced(2, 0, [':protocol', 'websocket'])],
      ['empty :protocol', WS.map(([n, v]) => [n, n === ':protocol' ? '' : v] as [string, string])],
    ];
    for (const [why, fields] of bad) {
      const { conn, rec } = setup({ enableConnectProtocol: true });
      conn.receive(0, headers(fields), false);
      assert.deepEqual(rec.events, [['streamError', 0, H3_MESSAGE_ERROR]], why);
    }
  });

  it('rejects malformed trailers', () => {
    const { conn, rec } = setup();
    conn.receive(0, cat(headers(GET), headers([[':path', '/']])), true);
    assert.deepEqual(rec.events, [
      ['request', 0, GET],
      ['streamError', 0, H3_MESSAGE_ERROR],
    ]);
  });

  it('sends GOAWAY with the next unprocessed id and refuses later requests', () => {
    const { conn, rec } = setup();
    conn.receive(0, headers(GET), true);
    conn.receive(8, headers(GET), false); // stream 4 is still in flight
    conn.goaway();
    const goaway = framesOn(conn.takeOutgoing(), 3, false);
    assert.deepEqual(goaway, [{ kind: 'goaway', id: 12 }]);
    conn.receive(4, headers(GET), true);
    assert.deepEqual(rec.events.at(-1), ['end', 4, undefined], 'below the GOAWAY id: still served');
    conn.receive(12, headers(GET), true);
    assert.deepEqual(rec.events.at(-1), ['streamError', 12, H3_REQUEST_REJECTED]);
    conn.goaway();
    assert.deepEqual(framesOn(conn.takeOutgoing(), 3, false), [{ kind: 'goaway', id: 12 }]);
  });

  it('ignores everything after a connection error', () => {
    const { conn, rec } = setup();
    conn.receive(0, data('x'), false);
    conn.receive(4, headers(GET), true);
    conn.receive(CLIENT_CONTROL, encodeSettingsFrame([]), false);
    assert.deepEqual(rec.events, [['connectionError', H3_FRAME_UNEXPECTED]]);
  });

  it('ignores late bytes on a finished stream and serves streams finished out of order', () => {
    const { conn, rec } = setup();
    conn.receive(8, headers(GET), true);
    conn.receive(0, headers(GET), true);
    conn.receive(0, headers(GET), true);
    conn.receive(4, headers(GET), true);
    assert.deepEqual(
      rec.events.map((e) => `${e[0]}:${e[1]}`),
      ['request:8', 'end:8', 'request:0', 'end:0', 'request:4', 'end:4'],
    );
  });
});
