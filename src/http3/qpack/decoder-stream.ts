// Reads the peer's QPACK decoder stream (RFC 9204 §4.4), i.e. feedback about our encoder. Our encoder never inserts
// into the dynamic table, so the only valid instruction is Stream Cancellation: a Section Acknowledgment or an
// Insert Count Increment refers to state we never created (§4.4.1, §4.4.3: QPACK_DECODER_STREAM_ERROR).

import { QPACK_DECODER_STREAM_ERROR, connectionError } from '../errors.ts';
import { type Cursor, INT_NEED_MORE, INT_OVERFLOW, asBuffer, readPrefixedInt } from './prefixed-int.ts';

const EMPTY = new Uint8Array(0);

export class PeerDecoderStreamReader {
  private leftover: Uint8Array = EMPTY;
  /** Stream Cancellations seen (diagnostics). */
  cancellations = 0;

  feed(chunk: Uint8Array): void {
    let data = chunk;
    if (this.leftover.length > 0) {
      data = new Uint8Array(this.leftover.length + chunk.length);
      data.set(this.leftover, 0);
      data.set(chunk, this.leftover.length);
    }
    const c: Cursor = { buf: asBuffer(data), pos: 0, end: data.length };
    while (c.pos < c.end) {
      const b = data[c.pos];
      if (b & 0x80) throw connectionError(QPACK_DECODER_STREAM_ERROR, 'Section Acknowledgment without a dynamic reference');
      if ((b & 0x40) === 0) throw connectionError(QPACK_DECODER_STREAM_ERROR, 'Insert Count Increment without inserts');
      const streamId = readPrefixedInt(c, 6);
      if (streamId === INT_NEED_MORE) break;
      if (streamId === INT_OVERFLOW) throw connectionError(QPACK_DECODER_STREAM_ERROR, 'stream id overflow');
      this.cancellations++;
    }
    // An incomplete instruction is at most a 6-bit prefix and 8 continuation bytes.
    this.leftover = c.pos < c.end ? data.slice(c.pos) : EMPTY;
  }
}
