// HTTP/2 framing (RFC 9113 §4, §6) for the fuzzer: a frame writer that lets every header field be wrong on
// purpose (length, type, flags, reserved bit, stream id), and a reader for what quiclb sends back.
export const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');

export const T_DATA = 0x0;
export const T_HEADERS = 0x1;
export const T_PRIORITY = 0x2;
export const T_RST_STREAM = 0x3;
export const T_SETTINGS = 0x4;
export const T_PUSH_PROMISE = 0x5;
export const T_PING = 0x6;
export const T_GOAWAY = 0x7;
export const T_WINDOW_UPDATE = 0x8;
export const T_CONTINUATION = 0x9;

export const F_END_STREAM = 0x1;
export const F_ACK = 0x1;
export const F_END_HEADERS = 0x4;
export const F_PADDED = 0x8;
export const F_PRIORITY = 0x20;

export const ERROR_NAMES = ['NO_ERROR', 'PROTOCOL_ERROR', 'INTERNAL_ERROR', 'FLOW_CONTROL_ERROR', 'SETTINGS_TIMEOUT', 'STREAM_CLOSED', 'FRAME_SIZE_ERROR', 'REFUSED_STREAM', 'CANCEL', 'COMPRESSION_ERROR', 'CONNECT_ERROR', 'ENHANCE_YOUR_CALM', 'INADEQUATE_SECURITY', 'HTTP_1_1_REQUIRED'];

export const errorName = (code: number): string => ERROR_NAMES[code] ?? `0x${code.toString(16)}`;

/** A frame; `length` overrides the real payload length (a lie the fuzzer tells on purpose). */
export function h2frame(type: number, flags: number, streamId: number, payload: Buffer, length = payload.length): Buffer {
  const h = Buffer.alloc(9);
  h.writeUIntBE(length & 0xffffff, 0, 3);
  h[3] = type & 0xff;
  h[4] = flags & 0xff;
  h.writeUInt32BE(streamId >>> 0, 5);
  return Buffer.concat([h, payload]);
}

export function u32(v: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(v >>> 0);
  return b;
}

export function settingsPayload(list: Array<[number, number]>): Buffer {
  return Buffer.concat(
    list.map(([id, v]) => {
      const b = Buffer.alloc(6);
      b.writeUInt16BE(id & 0xffff);
      b.writeUInt32BE(v >>> 0, 2);
      return b;
    }),
  );
}

export interface ReadFrame {
  type: number;
  flags: number;
  streamId: number;
  payload: Buffer;
}

/** Splits the server's bytes into frames; a last frame cut off by the receive cap is dropped (`truncated`). */
export function readFrames(data: Buffer): { frames: ReadFrame[]; truncated: boolean } {
  const frames: ReadFrame[] = [];
  let p = 0;
  while (p + 9 <= data.length) {
    const len = data.readUIntBE(p, 3);
    if (p + 9 + len > data.length) return { frames, truncated: true };
    frames.push({ type: data[p + 3], flags: data[p + 4], streamId: data.readUInt32BE(p + 5) & 0x7fffffff, payload: data.subarray(p + 9, p + 9 + len) });
    p += 9 + len;
  }
  return { frames, truncated: p < data.length };
}
