// An in-memory FrontResponse that records what a frontend would put on the wire, with a BodySink whose
// backpressure the test controls.
import type { BodySink, FrontResponse, HeaderList } from '../../src/shared/http-types.ts';

export interface Recording {
  status?: number;
  headers: HeaderList;
  chunks: Buffer[];
  ended: boolean;
  aborted?: Error;
  /** A write() while the sink had asked to wait for drain. */
  writesWhileFull: number;
  header(name: string): string | undefined;
  body(): Buffer;
}

export interface RecordingOptions {
  /** write() returns false after this many bytes since the last drain (default: never). */
  highWaterMark?: number;
  /** Delay before a pending drain fires (default 1 ms). */
  drainDelayMs?: number;
  /** Called after each write (e.g. to abort the client mid-body). */
  onWrite?(rec: Recording): void;
}

export function recordingResponse(opts: RecordingOptions = {}): { res: FrontResponse; rec: Recording; clientAbort(): void } {
  const rec: Recording = {
    headers: [],
    chunks: [],
    ended: false,
    writesWhileFull: 0,
    header: (name) => rec.headers.find(([n]) => n === name)?.[1],
    body: () => Buffer.concat(rec.chunks),
  };
  let sent = false;
  let abortCbs: Array<() => void> = [];
  let clientGone = false;
  let buffered = 0;
  let full = false;
  const sink: BodySink = {
    write(chunk) {
      if (full) rec.writesWhileFull++;
      rec.chunks.push(Buffer.from(chunk));
      buffered += chunk.length;
      if (opts.highWaterMark !== undefined && buffered >= opts.highWaterMark) full = true;
      opts.onWrite?.(rec);
      return !full;
    },
    end(chunk) {
      if (chunk !== undefined) rec.chunks.push(Buffer.from(chunk));
      rec.ended = true;
    },
    onDrain(cb) {
      if (!full) {
        process.nextTick(cb);
        return;
      }
      setTimeout(() => {
        full = false;
        buffered = 0;
        cb();
      }, opts.drainDelayMs ?? 1);
    },
  };
  const res: FrontResponse = {
    respond(status, headers) {
      if (sent) throw new Error('respond() called twice');
      sent = true;
      rec.status = status;
      rec.headers = headers;
      return sink;
    },
    inform() {},
    abort(reason) {
      rec.aborted = reason ?? new Error('aborted');
    },
    get headersSent() {
      return sent;
    },
    get finished() {
      return rec.ended;
    },
    onClientAbort(cb) {
      if (clientGone) process.nextTick(cb);
      else abortCbs.push(cb);
    },
  };
  const clientAbort = (): void => {
    clientGone = true;
    const cbs = abortCbs;
    abortCbs = [];
    for (const cb of cbs) cb();
  };
  return { res, rec, clientAbort };
}
