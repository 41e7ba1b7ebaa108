// One streaming encoder per compressed response (zlib's gzip, Brotli and zstd streams, which run on the
// libuv thread pool, not on the shard's JavaScript thread), and compressSink(), which puts it between the
// pipeline and a frontend's BodySink. Nothing is buffered whole: at most about one stream highWaterMark
// of input (64 KiB) and one of output sit in the encoder, plus zlib's own state, whatever the body size.
//
// Backpressure, both ways:
//   - client slow: sink.write() returns false -> the encoder stops emitting (pause) until sink.onDrain;
//     its output buffer fills, it stops taking input, and then our write() returns false;
//   - pipeline waits: our write() returned false -> onDrain(cb) runs cb on the encoder's 'drain'.
//
// Flushing. A compressor holds input back until it has enough to code well, which would stall a
// response the backend streams on purpose (Moodle's progress bars during a course restore or an upgrade
// echo and flush a line at a time; long polling; Server-Sent Events). So every written byte leaves the
// encoder within FLUSH_DELAY_MS: the first write after a flush arms one timer, and when it fires the
// encoder flushes what it holds (gzip Z_SYNC_FLUSH, Brotli BROTLI_OPERATION_FLUSH, zstd ZSTD_e_flush:
// the stream stays open and keeps its window, so the cost is a few bytes per flush and a shorter block).
// A body that arrives fast is flushed at most once per FLUSH_DELAY_MS however many chunks it comes in,
// so large responses keep their ratio; a trickle waits at most FLUSH_DELAY_MS longer than uncompressed.
// Measured on a 320 KB HTML + JS body written in 4 KiB chunks 2 ms apart (a slow backend): this timer
// made the output 0.07 (gzip 6) to 0.25 (Brotli 4) points of the input larger than never flushing,
// while flushing after every chunk (as Envoy's compressor does) cost 0.7 to 1.3 points; written
// without pauses, the output was exactly as large as never flushing.
import zlib from 'node:zlib';
import type { Transform } from 'node:stream';
import type { CompressionEncoding } from '../config/types.ts';
import type { BodySink } from '../shared/http-types.ts';
import { CC_BYTES_IN, CC_BYTES_OUT, CC_RESPONSES, type SharedState } from '../shared/state.ts';

/** Longest time a written byte waits in the encoder before a flush pushes it out. */
export const FLUSH_DELAY_MS = 10;

export const COMPRESS_ERROR_CODE = 'QUICLB_COMPRESS_FAILED';

/** The encoder or the sink below it failed; the response is broken (abort it) and its bytes so far are not a valid stream. */
export class CompressError extends Error {
  readonly code = COMPRESS_ERROR_CODE;
  readonly encoding: CompressionEncoding;

  constructor(encoding: CompressionEncoding, cause: unknown) {
    super(`${encoding} compression failed: ${(cause as Error)?.message ?? String(cause)}; the response was aborted`, { cause });
    this.name = 'CompressError';
    this.encoding = encoding;
  }
}

const C = zlib.constants;

const FLUSH_KIND: Record<CompressionEncoding, number> = {
  gzip: C.Z_SYNC_FLUSH, // Z_FULL_FLUSH (zlib's default for flush()) would also reset the window
  br: C.BROTLI_OPERATION_FLUSH,
  zstd: C.ZSTD_e_flush,
};

/** Brotli's size hint is a uint32; anything this large is "large" to it anyway. */
const MAX_SIZE_HINT = 2 ** 30;

type ZlibTransform = Transform & { flush(kind: number, cb?: () => void): void };

/**
 * A zlib compression stream for `encoding` at `level` (Brotli quality, zstd or gzip level; the config
 * schema bounds them). `sizeHint` is the uncompressed length when known: Brotli sizes its window and
 * tables by it. zstd gets no pledged size, since a backend that sends fewer bytes than its
 * Content-Length would then make the encoder fail instead of the response merely end short.
 */
export function createEncoder(encoding: CompressionEncoding, level: number, sizeHint?: number): ZlibTransform {
  switch (encoding) {
    case 'gzip':
      return zlib.createGzip({ level }) as ZlibTransform;
    case 'br':
      return zlib.createBrotliCompress({
        params: {
          [C.BROTLI_PARAM_QUALITY]: level,
          // Only text types are compressed (compression.types).
          [C.BROTLI_PARAM_MODE]: C.BROTLI_MODE_TEXT,
          [C.BROTLI_PARAM_SIZE_HINT]: sizeHint === undefined ? 0 : Math.min(sizeHint, MAX_SIZE_HINT),
        },
      }) as ZlibTransform;
    case 'zstd':
      return zlib.createZstdCompress({ params: { [C.ZSTD_c_compressionLevel]: level } }) as unknown as ZlibTransform;
  }
}

export interface CompressSinkOptions {
  /** The backend's Content-Length, when known (CompressionPlan.sizeHint). */
  sizeHint?: number;
  /** Where responses and bytes in/out are counted per coding, for /stats and /metrics. */
  state?: SharedState;
  /**
   * Called once if the encoder fails or `sink` throws (this sink is then aborted: nothing more reaches
   * `sink`); the caller aborts the FrontResponse.
   */
  onError?: (err: CompressError) => void;
  /** Overrides FLUSH_DELAY_MS (tests). */
  flushDelayMs?: number;
}

export interface CompressingSink extends BodySink {
  /**
   * The response is broken (client gone, backend failed mid-body): frees the encoder's native memory at
   * once, never ends `sink`, and turns later write()/end() calls into no-ops. Pending onDrain callbacks
   * are dropped.
   */
  abort(): void;
  /** Uncompressed bytes taken so far. */
  readonly bytesIn: number;
  /** Compressed bytes handed to the sink so far. */
  readonly bytesOut: number;
}

/**
 * A BodySink that compresses into `sink`. Write the uncompressed body to it exactly as to `sink`
 * (write() false -> wait for onDrain; end() once). `sink` gets the coded bytes and its end().
 */
export function compressSink(sink: BodySink, encoding: CompressionEncoding, level: number, options: CompressSinkOptions = {}): CompressingSink {
  const { state, onError } = options;
  const flushDelay = options.flushDelayMs ?? FLUSH_DELAY_MS;
  const encoder = createEncoder(encoding, level, options.sizeHint);
  let phase: 'open' | 'ending' | 'done' | 'aborted' = 'open';
  let flushTimer: NodeJS.Timeout | undefined;
  let bytesIn = 0;
  let bytesOut = 0;
  state?.addCompressionCounter(encoding, CC_RESPONSES);

  const stopTimer = (): void => {
    if (flushTimer !== undefined) clearTimeout(flushTimer);
    flushTimer = undefined;
  };

  const flushNow = (): void => {
    flushTimer = undefined;
    if (phase === 'open') encoder.flush(FLUSH_KIND[encoding]);
  };

  const release = (): void => {
    stopTimer();
    encoder.removeAllListeners('data');
    encoder.removeAllListeners('end');
    encoder.removeAllListeners('drain');
    // destroy() frees zlib's native state now rather than at garbage collection; a late 'error' from a
    // write already in the thread pool must not become an uncaught exception.
    encoder.on('error', () => {});
    encoder.destroy();
  };

  const fail = (err: unknown): void => {
    if (phase === 'aborted') return;
    phase = 'aborted';
    release();
    onError?.(new CompressError(encoding, err));
  };

  // These handlers run from zlib's thread-pool callbacks: a throw from the sink would reach the shard's
  // top level, so it fails this response instead.
  encoder.on('data', (chunk: Buffer) => {
    bytesOut += chunk.length;
    state?.addCompressionCounter(encoding, CC_BYTES_OUT, BigInt(chunk.length));
    try {
      if (!sink.write(chunk)) {
        // Stop emitting until the client catches up; the encoder then stops taking input too.
        encoder.pause();
        sink.onDrain(() => {
          if (phase !== 'aborted') encoder.resume();
        });
      }
    } catch (err) {
      fail(err);
    }
  });
  encoder.once('end', () => {
    if (phase === 'aborted') return;
    phase = 'done';
    stopTimer();
    try {
      sink.end();
    } catch (err) {
      fail(err);
    }
  });
  encoder.once('error', fail);

  return {
    write(chunk: Uint8Array): boolean {
      if (phase !== 'open') return false;
      bytesIn += chunk.byteLength;
      state?.addCompressionCounter(encoding, CC_BYTES_IN, BigInt(chunk.byteLength));
      const more = encoder.write(chunk);
      flushTimer ??= setTimeout(flushNow, flushDelay).unref();
      return more;
    },
    end(chunk?: Uint8Array): void {
      if (phase !== 'open') return;
      phase = 'ending';
      stopTimer();
      if (chunk !== undefined) {
        bytesIn += chunk.byteLength;
        state?.addCompressionCounter(encoding, CC_BYTES_IN, BigInt(chunk.byteLength));
        encoder.end(chunk);
      } else {
        encoder.end();
      }
    },
    onDrain(cb: () => void): void {
      if (phase === 'aborted') return;
      if (encoder.writableNeedDrain) encoder.once('drain', cb);
      else process.nextTick(cb);
    },
    abort(): void {
      if (phase === 'done' || phase === 'aborted') return;
      phase = 'aborted';
      release();
    },
    get bytesIn() {
      return bytesIn;
    },
    get bytesOut() {
      return bytesOut;
    },
  };
}
