// Answering a request with a file: status and headers (200, 206, 304, 412, 416, 405), then the bytes streamed
// to the frontend's BodySink with backpressure, a chunk at a time: the file is never read whole. The file
// handle is closed whatever happens (client abort, read error).

import type { FrontRequest, FrontResponse, HeaderList } from '../shared/http-types.ts';
import { evaluateConditionals, ifRangeAllows, validatorsFor } from './conditional.ts';
import { contentTypeFor } from './mime.ts';
import { parseRange } from './range.ts';
import type { OpenFile } from './safe-path.ts';

export interface ServeFileOptions {
  /**
   * Headers to send as well, e.g. what PHP set before X-Accel-Redirect (Content-Type, Content-Disposition,
   * Cache-Control, Set-Cookie). Their Content-Type wins over the extension's. Framing and validator fields
   * (content-length, content-range, transfer-encoding, accept-ranges, etag, last-modified) and x-accel-*
   * are replaced by the file's own.
   */
  headers?: HeaderList;
  /**
   * Answer 405 to methods other than GET and HEAD (default true: static files). X-Accel-Redirect passes false:
   * PHP already handled the method and the file is the answer, as nginx serves it.
   */
  getHeadOnly?: boolean;
  /** Bytes per read (default 64 KiB). */
  chunkSize?: number;
}

export interface ServeFileResult {
  status: number;
  /** Body bytes handed to the sink. */
  bytes: number;
  /** False when the client went away or a read failed before the end (the response was aborted). */
  completed: boolean;
}

const REPLACED = new Set(['content-length', 'content-range', 'transfer-encoding', 'accept-ranges', 'etag', 'last-modified']);

// RFC 9110 §15.4.5: a 304 carries the fields a 200 would have among these (and no representation metadata).
const KEPT_ON_304 = new Set(['cache-control', 'content-location', 'date', 'expires', 'vary', 'set-cookie']);

function callerHeaders(opts: ServeFileOptions): HeaderList {
  return (opts.headers ?? []).filter(([n]) => !REPLACED.has(n) && !n.startsWith('x-accel-'));
}

/** Sends `file` as the response to `req`; resolves when done, never rejects; always closes file.handle. */
export async function serveFile(req: FrontRequest, res: FrontResponse, file: OpenFile, opts: ServeFileOptions = {}): Promise<ServeFileResult> {
  let aborted = false;
  let wake: (() => void) | undefined;
  res.onClientAbort(() => {
    aborted = true;
    wake?.();
  });
  try {
    return await answer(req, res, file, opts, () => aborted, (w) => (wake = w));
  } catch (err) {
    // Only a read error gets here (headers may be out): break the response so it never looks complete.
    if (!res.finished) res.abort(err instanceof Error ? err : new Error(String(err)));
    return { status: 500, bytes: 0, completed: false };
  } finally {
    await file.handle.close().catch(() => {});
  }
}

async function answer(
  req: FrontRequest,
  res: FrontResponse,
  file: OpenFile,
  opts: ServeFileOptions,
  isAborted: () => boolean,
  setWake: (w: (() => void) | undefined) => void,
): Promise<ServeFileResult> {
  const method = req.method;
  if ((opts.getHeadOnly ?? true) && method !== 'GET' && method !== 'HEAD') {
    res.respond(405, [['allow', 'GET, HEAD'], ['content-length', '0']]).end();
    return { status: 405, bytes: 0, completed: true };
  }
  const size = file.stats.size;
  const v = validatorsFor(file.stats);
  const extra = callerHeaders(opts);
  const validators: HeaderList = [['etag', v.etag], ['last-modified', v.lastModified]];

  // X-Accel-Redirect answers any method with the file; conditionals then follow GET's rules (nginx turns the
  // redirected request into a GET).
  const asMethod = method === 'HEAD' ? 'HEAD' : 'GET';
  const cond = evaluateConditionals(asMethod, req.headers, v);
  if (cond === 'not-modified') {
    res.respond(304, [...validators, ...extra.filter(([n]) => KEPT_ON_304.has(n))]).end();
    return { status: 304, bytes: 0, completed: true };
  }
  if (cond === 'precondition-failed') {
    res.respond(412, [['content-length', '0']]).end();
    return { status: 412, bytes: 0, completed: true };
  }

  const contentType: HeaderList = extra.some(([n]) => n === 'content-type') ? [] : [['content-type', contentTypeFor(file.path)]];
  const rangeHeader = req.headers.find(([n]) => n === 'range')?.[1];
  const range = asMethod === 'GET' && ifRangeAllows(req.headers, v) ? parseRange(rangeHeader, size) : ({ kind: 'none' } as const);
  if (range.kind === 'unsatisfiable') {
    res.respond(416, [['content-range', `bytes */${size}`], ['content-length', '0'], ...validators]).end();
    return { status: 416, bytes: 0, completed: true };
  }
  const start = range.kind === 'single' ? range.start : 0;
  const end = range.kind === 'single' ? range.end : size - 1; // inclusive
  const length = end - start + 1;
  const status = range.kind === 'single' ? 206 : 200;
  const headers: HeaderList = [
    ...contentType,
    ...extra,
    ['content-length', String(length)],
    ['accept-ranges', 'bytes'],
    ...validators,
  ];
  if (status === 206) headers.push(['content-range', `bytes ${start}-${end}/${size}`]);
  const sink = res.respond(status, headers);
  if (method === 'HEAD' || length === 0) {
    sink.end();
    return { status, bytes: 0, completed: true };
  }

  const chunkSize = opts.chunkSize ?? 64 * 1024;
  let position = start;
  let sent = 0;
  while (sent < length) {
    if (isAborted()) return { status, bytes: sent, completed: false };
    const want = Math.min(chunkSize, length - sent);
    // A fresh buffer per chunk: the sink may keep a reference until the bytes are on the wire.
    const buf = Buffer.allocUnsafe(want);
    const { bytesRead } = await file.handle.read(buf, 0, want, position);
    if (isAborted()) return { status, bytes: sent, completed: false };
    if (bytesRead === 0) throw new Error(`file ${file.path} shrank while being served (${sent} of ${length} bytes sent)`);
    const chunk = bytesRead === want ? buf : buf.subarray(0, bytesRead);
    position += bytesRead;
    sent += bytesRead;
    if (sent === length) {
      sink.end(chunk);
      break;
    }
    if (!sink.write(chunk)) {
      await new Promise<void>((resolve) => {
        setWake(resolve);
        sink.onDrain(resolve);
      });
      setWake(undefined);
    }
  }
  return { status, bytes: sent, completed: true };
}
