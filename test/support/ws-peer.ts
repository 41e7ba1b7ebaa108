// A minimal RFC 6455 endpoint for tests, over any byte stream (a TCP socket, an HTTP/2 stream, an HTTP/3
// stream adapter): frames encoded and parsed with masking, messages reassembled from fragments, pings
// answered, close frames recorded with their code. It checks what a real endpoint checks about masking
// (§5.1: frames to a server masked, frames to a client not), so a proxy that got it wrong fails a test.
// The WebSocket backend and the HTTP/2 and HTTP/3 clients of the tests are built on it.
import { randomBytes } from 'node:crypto';
import type { Duplex } from 'node:stream';

export const OP_CONT = 0x0;
export const OP_TEXT = 0x1;
export const OP_BINARY = 0x2;
export const OP_CLOSE = 0x8;
export const OP_PING = 0x9;
export const OP_PONG = 0xa;

export interface Frame {
  fin: boolean;
  opcode: number;
  masked: boolean;
  payload: Buffer;
}

export function encodeFrame(opcode: number, payload: Uint8Array, mask: boolean, fin = true): Buffer {
  const len = payload.length;
  const ext = len < 126 ? 0 : len < 65536 ? 2 : 8;
  const head = Buffer.alloc(2 + ext + (mask ? 4 : 0));
  head[0] = (fin ? 0x80 : 0) | opcode;
  head[1] = (mask ? 0x80 : 0) | (ext === 0 ? len : ext === 2 ? 126 : 127);
  if (ext === 2) head.writeUInt16BE(len, 2);
  else if (ext === 8) head.writeBigUInt64BE(BigInt(len), 2);
  if (!mask) return Buffer.concat([head, payload]);
  const key = randomBytes(4);
  key.copy(head, 2 + ext);
  const body = Buffer.allocUnsafe(len);
  for (let i = 0; i < len; i++) body[i] = payload[i] ^ key[i & 3];
  return Buffer.concat([head, body]);
}

export function closePayload(code: number, reason = ''): Buffer {
  const r = Buffer.from(reason);
  const p = Buffer.alloc(2 + r.length);
  p.writeUInt16BE(code, 0);
  r.copy(p, 2);
  return p;
}

/** Parses frames from a byte stream (unmasking them). */
export class FrameParser {
  private buf: Buffer = Buffer.alloc(0);

  push(chunk: Buffer): Frame[] {
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
    const out: Frame[] = [];
    for (;;) {
      const b = this.buf;
      if (b.length < 2) break;
      const masked = (b[1] & 0x80) !== 0;
      let len = b[1] & 0x7f;
      let at = 2;
      if (len === 126) {
        if (b.length < 4) break;
        len = b.readUInt16BE(2);
        at = 4;
      } else if (len === 127) {
        if (b.length < 10) break;
        len = Number(b.readBigUInt64BE(2));
        at = 10;
      }
      const keyAt = at;
      if (masked) at += 4;
      if (b.length < at + len) break;
      let payload = b.subarray(at, at + len);
      if (masked) {
        const key = b.subarray(keyAt, keyAt + 4);
        const clear = Buffer.allocUnsafe(len);
        for (let i = 0; i < len; i++) clear[i] = payload[i] ^ key[i & 3];
        payload = clear;
      } else {
        payload = Buffer.from(payload);
      }
      out.push({ fin: (b[0] & 0x80) !== 0, opcode: b[0] & 0x0f, masked, payload });
      this.buf = b.subarray(at + len);
    }
    return out;
  }
}

export interface Message {
  binary: boolean;
  data: Buffer;
}

export interface PeerOptions {
  /** This end is a client: its frames are masked, and it expects unmasked frames (RFC 6455 §5.1). */
  client: boolean;
  /** Bytes that arrived before the peer was made (after the handshake). */
  head?: Buffer;
}

/** One end of a WebSocket over `stream`. */
export class WsPeer {
  readonly stream: Duplex;
  readonly client: boolean;
  /** Every frame received, in order (data frames, pings, closes). */
  readonly frames: Frame[] = [];
  /** Frames whose masking broke RFC 6455 §5.1. */
  readonly maskingErrors: Frame[] = [];
  /** The close code received (1005 when the close frame had none), once one came. */
  closeCode: number | undefined;
  closeReason = '';
  /** Bytes received after the close frame (none may come, RFC 6455 §5.5.1). */
  bytesAfterClose = 0;
  /** Settles when the stream has closed (both sides). */
  readonly closed: Promise<void>;
  private readonly parser = new FrameParser();
  private readonly queue: Message[] = [];
  private waiters: Array<(m: Message | undefined) => void> = [];
  private fragments: Buffer[] = [];
  private fragmentBinary = false;
  private closeSent = false;
  private ended = false;

  constructor(stream: Duplex, opts: PeerOptions) {
    this.stream = stream;
    this.client = opts.client;
    this.closed = new Promise<void>((resolve) => {
      stream.once('close', () => resolve());
    });
    stream.on('error', () => undefined);
    stream.on('data', (chunk: Buffer) => this.onBytes(chunk));
    stream.on('end', () => {
      this.ended = true;
      this.flushWaiters();
      // As a TCP endpoint without half-open connections does: the peer's end ends ours.
      if (!stream.writableEnded && !stream.destroyed) stream.end();
    });
    if (opts.head !== undefined && opts.head.length > 0) this.onBytes(opts.head);
  }

  sendText(text: string): boolean {
    return this.stream.write(encodeFrame(OP_TEXT, Buffer.from(text), this.client));
  }

  sendBinary(data: Uint8Array, fragments = 1): boolean {
    if (fragments <= 1) return this.stream.write(encodeFrame(OP_BINARY, data, this.client));
    const size = Math.ceil(data.length / fragments);
    let ok = true;
    for (let i = 0, off = 0; off < data.length || i === 0; i++, off += size) {
      const part = data.subarray(off, Math.min(off + size, data.length));
      const last = off + size >= data.length;
      ok = this.stream.write(encodeFrame(i === 0 ? OP_BINARY : OP_CONT, part, this.client, last));
      if (last) break;
    }
    return ok;
  }

  ping(data = Buffer.from('p')): void {
    this.stream.write(encodeFrame(OP_PING, data, this.client));
  }

  /** Sends a close frame (and, for a server, ends the stream as RFC 6455 §7.1.1 asks of it). */
  close(code = 1000, reason = ''): void {
    if (this.closeSent) return;
    this.closeSent = true;
    const frame = encodeFrame(OP_CLOSE, closePayload(code, reason), this.client);
    if (this.client) this.stream.write(frame);
    else this.stream.end(frame);
  }

  /** The next message, or undefined when the stream ended first. */
  next(timeoutMs = 10_000): Promise<Message | undefined> {
    const m = this.queue.shift();
    if (m !== undefined) return Promise.resolve(m);
    if (this.ended || this.closeCode !== undefined) return Promise.resolve(undefined);
    return new Promise<Message | undefined>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== waiter);
        reject(new Error(`no WebSocket message within ${timeoutMs} ms`));
      }, timeoutMs);
      const waiter = (msg: Message | undefined): void => {
        clearTimeout(timer);
        resolve(msg);
      };
      this.waiters.push(waiter);
    });
  }

  /** Resolves with the close code once a close frame arrived (or undefined when the stream ended without one). */
  async closeFrame(timeoutMs = 10_000): Promise<number | undefined> {
    const deadline = Date.now() + timeoutMs;
    while (this.closeCode === undefined && !this.ended && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
    return this.closeCode;
  }

  private onBytes(chunk: Buffer): void {
    if (this.closeCode !== undefined) {
      this.bytesAfterClose += chunk.length;
      return;
    }
    for (const f of this.parser.push(chunk)) {
      if (this.closeCode !== undefined) {
        this.bytesAfterClose += f.payload.length + 2;
        continue;
      }
      this.frames.push(f);
      if (f.masked === this.client) this.maskingErrors.push(f);
      switch (f.opcode) {
        case OP_PING:
          if (!this.closeSent) this.stream.write(encodeFrame(OP_PONG, f.payload, this.client));
          break;
        case OP_PONG:
          break;
        case OP_CLOSE:
          this.closeCode = f.payload.length >= 2 ? f.payload.readUInt16BE(0) : 1005;
          this.closeReason = f.payload.subarray(2).toString();
          this.flushWaiters();
          break;
        case OP_TEXT:
        case OP_BINARY:
          this.fragments = [f.payload];
          this.fragmentBinary = f.opcode === OP_BINARY;
          if (f.fin) this.deliver();
          break;
        case OP_CONT:
          this.fragments.push(f.payload);
          if (f.fin) this.deliver();
          break;
      }
    }
  }

  private deliver(): void {
    const m: Message = { binary: this.fragmentBinary, data: Buffer.concat(this.fragments) };
    this.fragments = [];
    const w = this.waiters.shift();
    if (w !== undefined) w(m);
    else this.queue.push(m);
  }

  private flushWaiters(): void {
    const ws = this.waiters;
    this.waiters = [];
    for (const w of ws) w(undefined);
  }
}
