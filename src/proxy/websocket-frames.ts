// Just enough of RFC 6455 framing for a proxy that never looks inside a message: where each frame ends
// (header and payload length; no unmasking, no UTF-8 checks, extensions such as permessage-deflate pass
// untouched), a close frame quiclb sends itself, and the opening handshake's key and accept values. Sans-IO.
import { createHash, randomBytes } from 'node:crypto';

/** RFC 6455 §7.4.1: the endpoint is going away (server shutting down). */
export const CLOSE_GOING_AWAY = 1001;

/** RFC 6455 §1.3: appended to Sec-WebSocket-Key before hashing. */
const ACCEPT_GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';

/** A fresh Sec-WebSocket-Key: 16 random octets, base64 (RFC 6455 §4.1). */
export function newWebSocketKey(): string {
  return randomBytes(16).toString('base64');
}

/** The Sec-WebSocket-Accept a server must answer to `key` (RFC 6455 §4.2.2). */
export function webSocketAccept(key: string): string {
  return createHash('sha1').update(key + ACCEPT_GUID).digest('base64');
}

/**
 * A close frame (RFC 6455 §5.5.1): FIN, opcode 0x8, the 2-octet status code and a UTF-8 reason (cut to
 * fit the 125-octet control frame limit, §5.5). Frames toward a server are masked with a fresh key (§5.3).
 */
export function encodeCloseFrame(code: number, reason: string, masked: boolean): Buffer {
  let text = Buffer.from(reason, 'utf8');
  if (text.length > 123) text = text.subarray(0, 123);
  const payload = Buffer.allocUnsafe(2 + text.length);
  payload.writeUInt16BE(code, 0);
  text.copy(payload, 2);
  const head = masked ? 6 : 2;
  const frame = Buffer.allocUnsafe(head + payload.length);
  frame[0] = 0x88;
  frame[1] = (masked ? 0x80 : 0) | payload.length;
  if (!masked) {
    payload.copy(frame, 2);
    return frame;
  }
  const key = randomBytes(4);
  key.copy(frame, 2);
  for (let i = 0; i < payload.length; i++) frame[6 + i] = payload[i] ^ key[i & 3];
  return frame;
}

/**
 * Follows the frames of one direction of a WebSocket connection (RFC 6455 §5.2): reads each frame header
 * (2 to 14 octets) for the payload length and skips the payload. `atBoundary` says whether the bytes seen
 * so far end exactly between two frames, the only place another frame (quiclb's own close) may go in.
 * A length beyond 2^53 (no real peer sends one) leaves the tracker `lost`: never at a boundary again.
 */
export class FrameTracker {
  private readonly head = new Uint8Array(14);
  private have = 0;
  /** Header octets needed: 2 until the second octet says how many more. */
  private need = 2;
  private payloadLeft = 0;
  lost = false;

  get atBoundary(): boolean {
    return !this.lost && this.have === 0 && this.payloadLeft === 0;
  }

  /**
   * Takes `chunk` (the next bytes of this direction) and returns how many of them it consumed: all of
   * them, or with `stopAtBoundary` only those up to the first frame end inside the chunk (0 when already at
   * a boundary).
   */
  advance(chunk: Uint8Array, stopAtBoundary = false): number {
    let i = 0;
    const n = chunk.length;
    while (i < n) {
      if (this.lost) return n;
      if (stopAtBoundary && this.atBoundary) return i;
      if (this.payloadLeft > 0) {
        const take = Math.min(this.payloadLeft, n - i);
        this.payloadLeft -= take;
        i += take;
        continue;
      }
      this.head[this.have++] = chunk[i++];
      if (this.have === 2) {
        const len7 = this.head[1] & 0x7f;
        this.need = 2 + (len7 === 126 ? 2 : len7 === 127 ? 8 : 0) + ((this.head[1] & 0x80) !== 0 ? 4 : 0);
      }
      if (this.have >= 2 && this.have === this.need) this.startPayload();
    }
    return n;
  }

  private startPayload(): void {
    const h = this.head;
    const len7 = h[1] & 0x7f;
    let len = len7;
    if (len7 === 126) len = (h[2] << 8) | h[3];
    else if (len7 === 127) {
      const high = ((h[2] << 24) >>> 0) + (h[3] << 16) + (h[4] << 8) + h[5];
      if (high > 0x1fffff) {
        this.lost = true;
        return;
      }
      len = high * 0x1_0000_0000 + ((h[6] << 24) >>> 0) + (h[7] << 16) + (h[8] << 8) + h[9];
    }
    this.have = 0;
    this.need = 2;
    this.payloadLeft = len;
  }
}
