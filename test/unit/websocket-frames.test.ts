// RFC 6455 framing as quiclb's WebSocket proxy needs it (src/proxy/websocket-frames.ts): frame boundaries
// from headers alone, however the bytes are split, the close frame quiclb sends itself, and the handshake's
// key and accept values. Frames are built by the test's own encoder (test/support/ws-peer.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FrameTracker, encodeCloseFrame, newWebSocketKey, webSocketAccept } from '../../src/proxy/websocket-frames.ts';
import { FrameParser, encodeFrame, OP_BINARY, OP_CLOSE, OP_CONT, OP_PING, OP_TEXT } from '../support/ws-peer.ts';

/** A stream of frames of every header size, masked and not, and the offsets where each one ends. */
function sample(masked: boolean): { bytes: Buffer; ends: number[] } {
  const frames = [
    encodeFrame(OP_TEXT, Buffer.alloc(0), masked),
    encodeFrame(OP_TEXT, Buffer.from('hi'), masked),
    encodeFrame(OP_BINARY, Buffer.alloc(125, 1), masked),
    encodeFrame(OP_BINARY, Buffer.alloc(126, 2), masked, false),
    encodeFrame(OP_PING, Buffer.from('ping'), masked),
    encodeFrame(OP_CONT, Buffer.alloc(65_535, 3), masked, false),
    encodeFrame(OP_CONT, Buffer.alloc(65_536, 4), masked),
    encodeFrame(OP_BINARY, Buffer.alloc(200_000, 5), masked),
  ];
  const ends: number[] = [];
  let at = 0;
  for (const f of frames) ends.push((at += f.length));
  return { bytes: Buffer.concat(frames), ends };
}

for (const masked of [false, true]) {
  const dir = masked ? 'client to server (masked)' : 'server to client (unmasked)';

  test(`FrameTracker is at a boundary exactly where each frame ends, byte by byte: ${dir}`, () => {
    const { bytes, ends } = sample(masked);
    const t = new FrameTracker();
    const boundaries: number[] = [];
    for (let i = 0; i < bytes.length; i++) {
      t.advance(bytes.subarray(i, i + 1));
      if (t.atBoundary) boundaries.push(i + 1);
    }
    assert.deepEqual(boundaries, ends);
  });

  test(`FrameTracker stopAtBoundary stops right after the frame in progress, whatever the chunking: ${dir}`, () => {
    const { bytes, ends } = sample(masked);
    for (const chunk of [1, 3, 7, 1000, 70_000, bytes.length]) {
      const t = new FrameTracker();
      const stops: number[] = [];
      let i = 0;
      // Feed a few bytes into each frame, then ask for the boundary with the rest in chunks.
      while (i < bytes.length) {
        t.advance(bytes.subarray(i, i + 1));
        i += 1;
        while (!t.atBoundary && i < bytes.length) {
          const piece = bytes.subarray(i, i + chunk);
          const k = t.advance(piece, true);
          i += k;
        }
        stops.push(i);
      }
      assert.deepEqual(stops, ends, `chunks of ${chunk}`);
    }
  });
}

test('FrameTracker: at a boundary stopAtBoundary consumes nothing; a length past 2^53 leaves it lost', () => {
  const t = new FrameTracker();
  assert.equal(t.advance(encodeFrame(OP_TEXT, Buffer.from('x'), false), true), 0);
  const huge = Buffer.from([0x82, 0x7f, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0]);
  assert.equal(t.advance(huge), huge.length);
  assert.equal(t.lost, true);
  assert.equal(t.atBoundary, false);
  assert.equal(t.advance(Buffer.alloc(100)), 100);
  assert.equal(t.atBoundary, false);
});

test('encodeCloseFrame: a close frame with code and reason, masked toward a server and not toward a client', () => {
  for (const masked of [false, true]) {
    const frame = encodeCloseFrame(1001, 'server shutting down', masked);
    const [f] = new FrameParser().push(frame);
    assert.equal(f.opcode, OP_CLOSE);
    assert.equal(f.fin, true);
    assert.equal(f.masked, masked);
    assert.equal(f.payload.readUInt16BE(0), 1001);
    assert.equal(f.payload.subarray(2).toString(), 'server shutting down');
    const t = new FrameTracker();
    t.advance(frame);
    assert.equal(t.atBoundary, true);
  }
  // RFC 6455 §5.5: a control frame payload is at most 125 octets.
  const long = new FrameParser().push(encodeCloseFrame(1001, 'x'.repeat(500), true))[0];
  assert.equal(long.payload.length, 125);
});

test('handshake values: the RFC 6455 §1.3 example accept, and fresh 16-octet keys', () => {
  assert.equal(webSocketAccept('dGhlIHNhbXBsZSBub25jZQ=='), 's3pPLMBiTxaQ9kYGzzhZRbK+xOo=');
  const a = newWebSocketKey();
  assert.equal(Buffer.from(a, 'base64').length, 16);
  assert.notEqual(a, newWebSocketKey());
});
