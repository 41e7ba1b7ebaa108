// A raw HTTP/2 client over TLS for tests that must send what well-behaved clients refuse to: malformed
// header blocks, HPACK bombs, HEADERS before the server's SETTINGS are acknowledged, a closed receive
// window. Frames are written by hand (RFC 9113 §4.1, §6); header blocks use HPACK literals without Huffman
// (RFC 7541 §6.2.2). The client advertises SETTINGS_HEADER_TABLE_SIZE 0, so the server's header blocks use
// the static table only and decode here without a dynamic table.
import tls from 'node:tls';
import { huffmanDecode } from '../../src/http3/qpack/huffman.ts';

export const FRAME = { DATA: 0, HEADERS: 1, RST_STREAM: 3, SETTINGS: 4, PING: 6, GOAWAY: 7, WINDOW_UPDATE: 8, CONTINUATION: 9 } as const;
export const FLAG = { END_STREAM: 0x1, ACK: 0x1, END_HEADERS: 0x4 } as const;
export const H2_ERROR = { NO_ERROR: 0, PROTOCOL_ERROR: 1, INTERNAL_ERROR: 2, REFUSED_STREAM: 7, CANCEL: 8, ENHANCE_YOUR_CALM: 11 } as const;

export interface Frame {
  type: number;
  flags: number;
  stream: number;
  payload: Buffer;
  /** Decoded fields of a HEADERS frame (END_HEADERS assumed: the server's blocks here are small). */
  fields?: Array<[string, string]>;
}

// RFC 7541 Appendix A.
const STATIC: Array<[string, string]> = [
  [':authority', ''], [':method', 'GET'], [':method', 'POST'], [':path', '/'], [':path', '/index.html'],
  [':scheme', 'http'], [':scheme', 'https'], [':status', '200'], [':status', '204'], [':status', '206'],
  [':status', '304'], [':status', '400'], [':status', '404'], [':status', '500'], ['accept-charset', ''],
  ['accept-encoding', 'gzip, deflate'], ['accept-language', ''], ['accept-ranges', ''], ['accept', ''],
  ['access-control-allow-origin', ''], ['age', ''], ['allow', ''], ['authorization', ''], ['cache-control', ''],
  ['content-disposition', ''], ['content-encoding', ''], ['content-language', ''], ['content-length', ''],
  ['content-location', ''], ['content-range', ''], ['content-type', ''], ['cookie', ''], ['date', ''], ['etag', ''],
  ['expect', ''], ['expires', ''], ['from', ''], ['host', ''], ['if-match', ''], ['if-modified-since', ''],
  ['if-none-match', ''], ['if-range', ''], ['if-unmodified-since', ''], ['last-modified', ''], ['link', ''],
  ['location', ''], ['max-forwards', ''], ['proxy-authenticate', ''], ['proxy-authorization', ''], ['range', ''],
  ['referer', ''], ['refresh', ''], ['retry-after', ''], ['server', ''], ['set-cookie', ''],
  ['strict-transport-security', ''], ['transfer-encoding', ''], ['user-agent', ''], ['vary', ''], ['via', ''],
  ['www-authenticate', ''],
];

function frame(type: number, flags: number, stream: number, payload: Uint8Array = Buffer.alloc(0)): Buffer {
  const head = Buffer.alloc(9);
  head.writeUIntBE(payload.length, 0, 3);
  head[3] = type;
  head[4] = flags;
  head.writeUInt32BE(stream & 0x7fffffff, 5);
  return Buffer.concat([head, payload]);
}

/** RFC 7541 §5.1 integer with an N-bit prefix; `first` holds the pattern bits above the prefix. */
export function hpackInt(value: number, prefixBits: number, first = 0): Buffer {
  const max = (1 << prefixBits) - 1;
  if (value < max) return Buffer.from([first | value]);
  const out = [first | max];
  value -= max;
  while (value >= 128) {
    out.push((value & 0x7f) | 0x80);
    value >>>= 7;
  }
  out.push(value);
  return Buffer.from(out);
}

function hpackString(s: string): Buffer {
  const bytes = Buffer.from(s, 'latin1');
  return Buffer.concat([hpackInt(bytes.length, 7), bytes]);
}

/** A field as a literal without indexing, new name (RFC 7541 §6.2.2): names are sent exactly as given. */
export function literalField(name: string, value: string): Buffer {
  return Buffer.concat([Buffer.from([0x00]), hpackString(name), hpackString(value)]);
}

/** A field as a literal with incremental indexing, new name (§6.2.1): it becomes dynamic entry 62. */
export function indexedLiteralField(name: string, value: string): Buffer {
  return Buffer.concat([Buffer.from([0x40]), hpackString(name), hpackString(value)]);
}

/** An indexed field (§6.1): `index` 62 is the newest dynamic table entry. */
export function indexedField(index: number): Buffer {
  return hpackInt(index, 7, 0x80);
}

export function headerBlock(fields: ReadonlyArray<readonly [string, string]>): Buffer {
  return Buffer.concat(fields.map(([n, v]) => literalField(n, v)));
}

function decodeString(buf: Buffer, pos: { i: number }): string {
  const huffman = (buf[pos.i] & 0x80) !== 0;
  const len = decodeInt(buf, pos, 7);
  const raw = buf.subarray(pos.i, pos.i + len);
  pos.i += len;
  return Buffer.from(huffman ? huffmanDecode(raw) : raw).toString('latin1');
}

function decodeInt(buf: Buffer, pos: { i: number }, prefixBits: number): number {
  const max = (1 << prefixBits) - 1;
  let value = buf[pos.i++] & max;
  if (value < max) return value;
  let shift = 0;
  let b;
  do {
    b = buf[pos.i++];
    value += (b & 0x7f) * 2 ** shift;
    shift += 7;
  } while (b & 0x80);
  return value;
}

/** Decodes a header block that uses the static table only (the client advertised a table size of 0). */
export function decodeBlock(buf: Buffer): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  const pos = { i: 0 };
  const nameAt = (index: number): string => {
    const e = STATIC[index - 1];
    if (!e) throw new Error(`HPACK index ${index} is not in the static table (dynamic table used?)`);
    return e[0];
  };
  while (pos.i < buf.length) {
    const b = buf[pos.i];
    if (b & 0x80) {
      const index = decodeInt(buf, pos, 7);
      const e = STATIC[index - 1];
      if (!e) throw new Error(`HPACK index ${index} is not in the static table (dynamic table used?)`);
      out.push([e[0], e[1]]);
    } else if ((b & 0xe0) === 0x20) {
      decodeInt(buf, pos, 5); // dynamic table size update
    } else {
      const prefix = (b & 0xc0) === 0x40 ? 6 : 4;
      const index = decodeInt(buf, pos, prefix);
      const name = index === 0 ? decodeString(buf, pos) : nameAt(index);
      out.push([name, decodeString(buf, pos)]);
    }
  }
  return out;
}

export interface RawH2Options {
  /** Source address of the client's socket (another loopback address = another client). */
  localAddress?: string;
  /** Acknowledge the server's SETTINGS (default true). Without it, the server's own limits never take effect. */
  ackSettings?: boolean;
  /** Receive window the client grants for the connection on top of the initial 65535 (default 16 MiB). */
  connectionWindow?: number;
  /** SETTINGS_INITIAL_WINDOW_SIZE the client advertises (default 65535, per stream). */
  initialWindowSize?: number;
}

export class RawH2 {
  readonly socket: tls.TLSSocket;
  readonly frames: Frame[] = [];
  private buf: Buffer = Buffer.alloc(0);
  private readonly waiters = new Set<() => void>();
  private readonly opts: RawH2Options;
  closed = false;

  private constructor(socket: tls.TLSSocket, opts: RawH2Options) {
    this.socket = socket;
    this.opts = opts;
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', () => undefined);
    socket.on('close', () => {
      this.closed = true;
      this.wake();
    });
  }

  static connect(port: number, opts: RawH2Options = {}): Promise<RawH2> {
    return new Promise((resolve, reject) => {
      // localAddress is a net.connect option tls.connect passes on (its type does not list it).
      const options = { host: '127.0.0.1', port, localAddress: opts.localAddress, ALPNProtocols: ['h2'], rejectUnauthorized: false } as tls.ConnectionOptions;
      const socket = tls.connect(options, () => {
        if (socket.alpnProtocol !== 'h2') return reject(new Error(`ALPN gave ${socket.alpnProtocol}, not h2`));
        const c = new RawH2(socket, opts);
        const settings = Buffer.alloc(12);
        settings.writeUInt16BE(0x1, 0); // SETTINGS_HEADER_TABLE_SIZE
        settings.writeUInt32BE(0, 2);
        settings.writeUInt16BE(0x4, 6); // SETTINGS_INITIAL_WINDOW_SIZE
        settings.writeUInt32BE(opts.initialWindowSize ?? 65535, 8);
        const windowUpdate = Buffer.alloc(4);
        windowUpdate.writeUInt32BE(opts.connectionWindow ?? 16 * 1024 * 1024, 0);
        socket.write(Buffer.concat([
          Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1'),
          frame(FRAME.SETTINGS, 0, 0, settings),
          ...(opts.connectionWindow === 0 ? [] : [frame(FRAME.WINDOW_UPDATE, 0, 0, windowUpdate)]),
        ]));
        resolve(c);
      });
      socket.once('error', reject);
    });
  }

  private onData(chunk: Buffer): void {
    this.buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk;
    while (this.buf.length >= 9) {
      const len = this.buf.readUIntBE(0, 3);
      if (this.buf.length < 9 + len) break;
      const f: Frame = { type: this.buf[3], flags: this.buf[4], stream: this.buf.readUInt32BE(5) & 0x7fffffff, payload: this.buf.subarray(9, 9 + len) };
      this.buf = this.buf.subarray(9 + len);
      if (f.type === FRAME.HEADERS) f.fields = decodeBlock(f.payload);
      if (f.type === FRAME.SETTINGS && !(f.flags & FLAG.ACK) && this.opts.ackSettings !== false) {
        this.socket.write(frame(FRAME.SETTINGS, FLAG.ACK, 0));
      }
      this.frames.push(f);
    }
    this.wake();
  }

  private wake(): void {
    for (const w of [...this.waiters]) w();
  }

  write(...chunks: Buffer[]): void {
    this.socket.write(Buffer.concat(chunks));
  }

  /** HEADERS plus CONTINUATION frames when the block is larger than the default SETTINGS_MAX_FRAME_SIZE (§6.10). */
  headersFrame(stream: number, block: Buffer, endStream: boolean): Buffer {
    const MAX = 16384;
    const end = endStream ? FLAG.END_STREAM : 0;
    if (block.length <= MAX) return frame(FRAME.HEADERS, FLAG.END_HEADERS | end, stream, block);
    const out = [frame(FRAME.HEADERS, end, stream, block.subarray(0, MAX))];
    for (let off = MAX; off < block.length; off += MAX) {
      out.push(frame(FRAME.CONTINUATION, off + MAX >= block.length ? FLAG.END_HEADERS : 0, stream, block.subarray(off, off + MAX)));
    }
    return Buffer.concat(out);
  }

  dataFrame(stream: number, data: Uint8Array, endStream: boolean): Buffer {
    return frame(FRAME.DATA, endStream ? FLAG.END_STREAM : 0, stream, data);
  }

  rstFrame(stream: number, code: number): Buffer {
    const p = Buffer.alloc(4);
    p.writeUInt32BE(code, 0);
    return frame(FRAME.RST_STREAM, 0, stream, p);
  }

  windowUpdateFrame(stream: number, increment: number): Buffer {
    const p = Buffer.alloc(4);
    p.writeUInt32BE(increment, 0);
    return frame(FRAME.WINDOW_UPDATE, 0, stream, p);
  }

  /** Sends a request whose fields are written exactly as given (pseudo-headers included). */
  request(stream: number, fields: ReadonlyArray<readonly [string, string]>, endStream = true): void {
    this.write(this.headersFrame(stream, headerBlock(fields), endStream));
  }

  /** Waits for a frame matching `pred` (already received or future). */
  waitFor(pred: (f: Frame) => boolean, timeoutMs = 5000, what = 'frame'): Promise<Frame> {
    return new Promise((resolve, reject) => {
      const check = () => {
        const hit = this.frames.find(pred);
        if (hit) {
          done();
          resolve(hit);
        } else if (this.closed) {
          done();
          reject(new Error(`connection closed while waiting for ${what}; frames: ${this.describe()}`));
        }
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`timed out waiting for ${what}; frames: ${this.describe()}`));
      }, timeoutMs);
      const done = () => {
        clearTimeout(timer);
        this.waiters.delete(check);
      };
      this.waiters.add(check);
      check();
    });
  }

  /** The final status of `stream`, or its RST_STREAM code as `{ reset }`, or `{ goaway }` when the connection ends first. */
  async outcome(stream: number, timeoutMs = 5000): Promise<{ status: number; fields: Array<[string, string]> } | { reset: number } | { goaway: number }> {
    const f = await this.waitFor(
      (x) =>
        (x.stream === stream && x.type === FRAME.RST_STREAM) ||
        (x.stream === stream && x.type === FRAME.HEADERS && Number(x.fields?.find(([n]) => n === ':status')?.[1]) >= 200) ||
        (x.type === FRAME.GOAWAY && x.payload.readUInt32BE(0) < stream),
      timeoutMs,
      `the outcome of stream ${stream}`,
    );
    if (f.type === FRAME.RST_STREAM) return { reset: f.payload.readUInt32BE(0) };
    if (f.type === FRAME.GOAWAY) return { goaway: f.payload.readUInt32BE(4) };
    return { status: Number(f.fields!.find(([n]) => n === ':status')![1]), fields: f.fields! };
  }

  /** Body bytes received on `stream` so far. */
  body(stream: number): Buffer {
    return Buffer.concat(this.frames.filter((f) => f.stream === stream && f.type === FRAME.DATA).map((f) => f.payload));
  }

  goaway(): { lastStream: number; code: number } | undefined {
    const f = this.frames.find((x) => x.type === FRAME.GOAWAY);
    return f && { lastStream: f.payload.readUInt32BE(0) & 0x7fffffff, code: f.payload.readUInt32BE(4) };
  }

  describe(): string {
    return this.frames
      .map((f) => {
        const name = Object.entries(FRAME).find(([, v]) => v === f.type)?.[0] ?? String(f.type);
        const extra = f.type === FRAME.RST_STREAM ? ` code=${f.payload.readUInt32BE(0)}` : f.type === FRAME.GOAWAY ? ` code=${f.payload.readUInt32BE(4)}` : f.fields ? ` ${JSON.stringify(f.fields)}` : ` len=${f.payload.length}`;
        return `${name}[${f.stream}]${extra}`;
      })
      .join(', ');
  }

  close(): void {
    this.socket.destroy();
  }
}
