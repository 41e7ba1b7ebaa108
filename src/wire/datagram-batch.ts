// Datagrams cross between the primary and the shards in batches: one ArrayBuffer per batch, moved
// (transferred, not copied) with postMessage. One postMessage per datagram costs 5.5-7.5 us; a batch of
// 32 about 0.7 us per datagram (docs/quiche.md; bench/quic-transfer.ts measures it again).
//
// Record layout, repeated `count` times:
//   u16 data length | u16 peer port | u8 flags | u8 address length | address (latin1 text)
//   | u8 original-DCID length | original DCID | data
// The address stays text: the receiving side needs it as text anyway (quiche's HostPort and dgram.send).

/** primary -> shard: the first datagram of a connection the primary just placed on this shard. */
export const FLAG_NEW_CONNECTION = 1;
/** shard -> primary: a stateless reset (RFC 9000 §10.3); the primary rate-limits and counts it before sending. */
export const FLAG_STATELESS_RESET = 2;

const FIXED = 2 + 2 + 1 + 1 + 1;
const MAX_ADDRESS = 45; // longest IPv6 literal text

export interface BatchMessage {
  buf: ArrayBuffer;
  len: number;
  n: number;
}

export class DatagramBatchWriter {
  private readonly capacity: number;
  private buf: Buffer;
  private pos = 0;
  count = 0;

  constructor(capacity = 64 * 1024) {
    this.capacity = capacity;
    this.buf = Buffer.allocUnsafeSlow(capacity);
  }

  get bytes(): number {
    return this.pos;
  }

  /** True when a datagram of `dataLen` octets (with any address and ODCID) still fits. */
  fits(dataLen: number): boolean {
    return this.pos + FIXED + MAX_ADDRESS + 20 + dataLen <= this.capacity;
  }

  /** The caller checked fits(len) first. */
  append(data: Uint8Array, len: number, host: string, port: number, flags = 0, odcid?: Uint8Array | null): void {
    const b = this.buf;
    let p = this.pos;
    b.writeUInt16BE(len, p);
    b.writeUInt16BE(port, p + 2);
    b[p + 4] = flags;
    const alen = b.write(host, p + 6, MAX_ADDRESS, 'latin1');
    b[p + 5] = alen;
    p += 6 + alen;
    const olen = odcid ? odcid.length : 0;
    b[p++] = olen;
    if (odcid) {
      b.set(odcid, p);
      p += olen;
    }
    if (data.length === len) b.set(data, p);
    else b.set(data.subarray(0, len), p);
    this.pos = p + len;
    this.count++;
  }

  /** Hands the filled buffer over (to be transferred) and starts a fresh one; null when empty. */
  take(): BatchMessage | null {
    if (this.count === 0) return null;
    // Copy out exactly the filled part and keep the big buffer: allocating (and detaching) a full-size
    // ArrayBuffer per flush costs more than the memcpy when batches are small, as at low load they are.
    const buf = new ArrayBuffer(this.pos);
    new Uint8Array(buf).set(this.buf.subarray(0, this.pos));
    const msg = { buf, len: this.pos, n: this.count };
    this.pos = 0;
    this.count = 0;
    return msg;
  }

  /** Forget the content (the receiver died). */
  clear(): void {
    this.pos = 0;
    this.count = 0;
  }
}

export type DatagramVisitor = (data: Buffer, host: string, port: number, flags: number, odcid: Buffer | null) => void;

/** Calls `visit` for each record; a malformed batch stops at the first bad record and returns false. */
export function readBatch(buf: ArrayBuffer, len: number, visit: DatagramVisitor): boolean {
  const b = Buffer.from(buf, 0, len);
  let p = 0;
  while (p < len) {
    if (p + FIXED > len) return false;
    const dlen = b.readUInt16BE(p);
    const port = b.readUInt16BE(p + 2);
    const flags = b[p + 4];
    const alen = b[p + 5];
    p += 6;
    if (p + alen + 1 > len) return false;
    const host = b.toString('latin1', p, p + alen);
    p += alen;
    const olen = b[p++];
    if (p + olen + dlen > len) return false;
    const odcid = olen > 0 ? b.subarray(p, p + olen) : null;
    p += olen;
    visit(b.subarray(p, p + dlen), host, port, flags, odcid);
    p += dlen;
  }
  return true;
}
