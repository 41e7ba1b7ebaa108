// compressSink(): round trips through zlib's decoders, flushing of streamed bodies, backpressure both
// ways with a slow sink, abort mid-stream, and the shared counters.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import zlib from 'node:zlib';
import type { Transform } from 'node:stream';
import { compressSink, FLUSH_DELAY_MS } from '../../src/compress/encoder.ts';
import type { CompressionEncoding } from '../../src/config/types.ts';
import type { BodySink } from '../../src/shared/http-types.ts';
import { CC_BYTES_IN, CC_BYTES_OUT, CC_RESPONSES, SharedState } from '../../src/shared/state.ts';
import { rng } from '../support/seeded-random.ts';

const WORDS = ['moodle', 'course', 'quiz', 'forum', '<div class="activity">', '</div>', 'student', 'grade', '{"id":', '},', '\n', 'the', 'a', 'lesson'];

/** Text that compresses about as well as real pages do (not a single repeated byte). */
function text(bytes: number, seed: number): Buffer {
  const r = rng(seed);
  const parts: string[] = [];
  let n = 0;
  while (n < bytes) {
    const w = r() < 0.2 ? String(Math.floor(r() * 1e6)) : WORDS[Math.floor(r() * WORDS.length)];
    parts.push(w, ' ');
    n += w.length + 1;
  }
  return Buffer.from(parts.join('')).subarray(0, bytes);
}

function decompressSync(encoding: CompressionEncoding, data: Buffer): Buffer {
  if (encoding === 'gzip') return zlib.gunzipSync(data);
  if (encoding === 'br') return zlib.brotliDecompressSync(data);
  return zlib.zstdDecompressSync(data);
}

function decoder(encoding: CompressionEncoding): Transform {
  if (encoding === 'gzip') return zlib.createGunzip();
  if (encoding === 'br') return zlib.createBrotliDecompress();
  return zlib.createZstdDecompress() as unknown as Transform;
}

/** A sink that keeps everything and says when it ended. */
function collectingSink() {
  const chunks: Buffer[] = [];
  let ended = false;
  let resolveEnd!: () => void;
  const done = new Promise<void>((r) => (resolveEnd = r));
  const sink: BodySink = {
    write(chunk) {
      assert.equal(ended, false, 'no write after end');
      chunks.push(Buffer.from(chunk));
      return true;
    },
    end(chunk) {
      assert.equal(ended, false, 'end once');
      if (chunk) chunks.push(Buffer.from(chunk));
      ended = true;
      resolveEnd();
    },
    onDrain: (cb) => process.nextTick(cb),
  };
  return { sink, chunks, done, body: () => Buffer.concat(chunks), ended: () => ended };
}

/** Writes `body` in pieces, waiting for onDrain whenever write() says false, then ends. */
async function produce(sink: BodySink, body: Buffer, pieceSize: (i: number) => number): Promise<{ falses: number }> {
  let falses = 0;
  let off = 0;
  for (let i = 0; off < body.length; i++) {
    const piece = body.subarray(off, off + pieceSize(i));
    off += piece.length;
    if (!sink.write(piece)) {
      falses++;
      await new Promise<void>((r) => sink.onDrain(r));
    }
  }
  sink.end();
  return { falses };
}

for (const encoding of ['br', 'gzip', 'zstd'] as const) {
  test(`${encoding}: a 1 MiB body in uneven chunks round-trips through zlib's decoder; counters add up`, async () => {
    const body = text(1024 * 1024 + 17, 1);
    const state = new SharedState();
    const out = collectingSink();
    const level = { br: 4, gzip: 6, zstd: 3 }[encoding];
    const sink = compressSink(out.sink, encoding, level, { state, sizeHint: body.length });
    const r = rng(2);
    await produce(sink, body, () => 1 + Math.floor(r() * 40000));
    await out.done;
    const coded = out.body();
    assert.ok(coded.length < body.length / 2, `${encoding} compressed ${body.length} to ${coded.length}`);
    assert.ok(decompressSync(encoding, coded).equals(body));
    assert.equal(sink.bytesIn, body.length);
    assert.equal(sink.bytesOut, coded.length);
    assert.equal(state.compressionCounter(encoding, CC_RESPONSES), 1n);
    assert.equal(state.compressionCounter(encoding, CC_BYTES_IN), BigInt(body.length));
    assert.equal(state.compressionCounter(encoding, CC_BYTES_OUT), BigInt(coded.length));
    for (const other of (['br', 'gzip', 'zstd'] as const).filter((e) => e !== encoding)) assert.equal(state.compressionCounter(other, CC_RESPONSES), 0n);
  });

  test(`${encoding}: an empty body and a body given only to end() are valid streams`, async () => {
    let out = collectingSink();
    compressSink(out.sink, encoding, 3).end();
    await out.done;
    assert.equal(decompressSync(encoding, out.body()).length, 0);
    out = collectingSink();
    const body = text(5000, 3);
    compressSink(out.sink, encoding, 3).end(body);
    await out.done;
    assert.ok(decompressSync(encoding, out.body()).equals(body));
  });

  test(`${encoding}: a streamed body is not held back: each piece is decodable soon after it is written`, async () => {
    const out = collectingSink();
    const sink = compressSink(out.sink, encoding, { br: 4, gzip: 6, zstd: 3 }[encoding]);
    const dec = decoder(encoding);
    let decoded = '';
    dec.on('data', (d: Buffer) => (decoded += d.toString()));
    let fed = 0;
    const feed = () => {
      for (; fed < out.chunks.length; fed++) dec.write(out.chunks[fed]);
    };
    // A backend that prints a progress line and then thinks (Moodle's restore and upgrade pages).
    for (const line of ['<p>Restoring course 1 of 3</p>\n', '<p>Restoring course 2 of 3</p>\n', '<p>Restoring course 3 of 3</p>\n']) {
      const before = decoded.length;
      sink.write(Buffer.from(line));
      const deadline = Date.now() + 5000;
      while (decoded.length < before + line.length && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, FLUSH_DELAY_MS));
        feed();
        await new Promise((r) => setImmediate(r));
      }
      assert.ok(decoded.endsWith(line), `the client can decode ${JSON.stringify(line)} before the body ends (got ${JSON.stringify(decoded)})`);
      assert.equal(out.ended(), false);
    }
    sink.end();
    await out.done;
    assert.ok(decompressSync(encoding, out.body()).toString().endsWith('3 of 3</p>\n'));
  });
}

test('a slow client: the encoder stops feeding the sink until onDrain, the producer is told to wait, memory stays bounded', async () => {
  const total = 32 * 1024 * 1024;
  const body = text(total, 4);
  const dec = zlib.createGunzip();
  let decodedBytes = 0;
  dec.on('data', (d: Buffer) => (decodedBytes += d.length));
  let blocked = false;
  let writesWhileBlocked = 0;
  let drains = 0;
  let ended = false;
  let sinkRef!: BodySink;
  const sinkDone = new Promise<void>((resolve) => {
    const slow: BodySink = {
      write(chunk) {
        if (blocked) writesWhileBlocked++;
        dec.write(Buffer.from(chunk));
        // Every write fills this client's window: it needs a timer tick to take more.
        blocked = true;
        return false;
      },
      end() {
        ended = true;
        dec.end();
        dec.once('end', resolve);
      },
      onDrain(cb) {
        setTimeout(() => {
          blocked = false;
          drains++;
          cb();
        }, 1);
      },
    };
    sinkRef = slow;
  });
  const sink = compressSink(sinkRef, 'gzip', 1);
  // Bytes the producer handed over that the client has not decoded yet: what sits in the encoder, its
  // stream buffers and the (tiny) test decoder. Sampled every millisecond.
  let maxInFlight = 0;
  const probe = setInterval(() => (maxInFlight = Math.max(maxInFlight, sink.bytesIn - decodedBytes)), 1);
  const { falses } = await produce(sink, body, () => 16 * 1024);
  await sinkDone;
  clearInterval(probe);
  assert.ok(ended);
  assert.equal(decodedBytes, total);
  assert.equal(writesWhileBlocked, 0, 'the encoder never wrote to the sink between a false and its onDrain');
  assert.ok(drains > 10, `the sink asked to wait ${drains} times`);
  assert.ok(falses > 10, `the producer was told to wait ${falses} times`);
  // Without backpressure the producer would push all 32 MiB into the encoder at once; with it the peak
  // measured 0.56 MiB (one stream highWaterMark of input, one of output, zlib's window).
  assert.ok(maxInFlight < 2 * 1024 * 1024, `bytes accepted but not yet delivered peaked at ${maxInFlight}`);
});

test('abort mid-stream: nothing more reaches the sink, it is never ended, later calls are no-ops', async () => {
  for (const encoding of ['br', 'gzip', 'zstd'] as const) {
    let writes = 0;
    let ends = 0;
    let drainCb: (() => void) | undefined;
    const sink: BodySink = {
      write() {
        writes++;
        return false; // a client that stopped reading
      },
      end() {
        ends++;
      },
      onDrain(cb) {
        drainCb = cb;
      },
    };
    const errors: Error[] = [];
    const c = compressSink(sink, encoding, 3, { onError: (e) => errors.push(e) });
    const body = text(512 * 1024, 5);
    for (let off = 0; off < body.length; off += 65536) c.write(body.subarray(off, off + 65536));
    // Let the thread pool produce output: the first chunk reaches the sink, which then blocks.
    const deadline = Date.now() + 5000;
    while (writes === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
    assert.ok(writes >= 1, `${encoding}: some output reached the sink before the abort`);
    c.abort();
    const writesAtAbort = writes;
    assert.equal(c.write(Buffer.from('more')), false);
    c.end(Buffer.from('end'));
    c.abort();
    let laterDrain = false;
    c.onDrain(() => (laterDrain = true));
    drainCb?.(); // the client catches up after all: the aborted encoder must not resume
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(writes, writesAtAbort, `${encoding}: no write after abort`);
    assert.equal(ends, 0, `${encoding}: an aborted response is never ended`);
    assert.equal(laterDrain, false);
    assert.deepEqual(errors, []);
  }
});

test('a sink that throws fails the response through onError instead of escaping from a zlib callback', async () => {
  const errors: Error[] = [];
  let writes = 0;
  const broken: BodySink = {
    write() {
      writes++;
      throw new Error('socket gone');
    },
    end() {},
    onDrain: (cb) => process.nextTick(cb),
  };
  const c = compressSink(broken, 'gzip', 6, { onError: (e) => errors.push(e) });
  c.write(text(200_000, 7));
  c.end();
  const deadline = Date.now() + 5000;
  while (errors.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(errors.length, 1);
  assert.equal((errors[0] as Error & { code: string }).code, 'QUICLB_COMPRESS_FAILED');
  assert.match(errors[0].message, /gzip compression failed: socket gone/);
  assert.equal(writes, 1, 'nothing more is written after the failure');
  assert.equal(c.write(Buffer.from('x')), false);
});
