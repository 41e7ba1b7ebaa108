// A BodySink over a stream.Writable, for frontends whose transport is a stream (node:http2 streams, the
// HTTP/3 stream writer) and for tests.
import type { Writable } from 'node:stream';
import type { BodySink } from './http-types.ts';

export function writableSink(w: Writable): BodySink {
  return {
    write: (chunk) => w.write(chunk),
    end: (chunk) => {
      if (chunk === undefined) w.end();
      else w.end(chunk);
    },
    onDrain: (cb) => {
      if (w.writableNeedDrain) w.once('drain', cb);
      else process.nextTick(cb);
    },
  };
}
