// FastCGI needs CONTENT_LENGTH before the body (PHP reads exactly that many bytes of STDIN), so a body without
// a length (HTTP/1.1 chunked, HTTP/2 or HTTP/3 DATA without content-length) is first written to a temporary
// file, as nginx does with client_body_temp_path. Bodies with a length stream straight through.
//
// The file is created 0600 with O_EXCL and unlinked at once: it lives only as the open descriptor, so nothing
// is left behind even if the process dies, and no other user can open it by name.

import { randomBytes } from 'node:crypto';
import { open, unlink, type FileHandle } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import type { FrontRequest } from '../shared/http-types.ts';

export type SpoolErrorCode =
  /** The body went past maxBytes (answer 413). */
  | 'QUICLB_SPOOL_TOO_LARGE'
  /** The client's body stream failed (client went away): nothing to answer. */
  | 'QUICLB_SPOOL_BODY_FAILED'
  /** The temporary file could not be created or written (disk full, permissions): answer 500 and log. */
  | 'QUICLB_SPOOL_IO';

export class SpoolError extends Error {
  readonly code: SpoolErrorCode;

  constructor(code: SpoolErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'SpoolError';
    this.code = code;
  }
}

export interface PreparedBody {
  /** The stream to send (the original one, or a read of the spooled file). */
  body: Readable | null;
  contentLength: number;
  /** True when the body went through a temporary file. */
  spooled: boolean;
  /** Closes the spooled file's descriptor (idempotent); call when the request is over. */
  dispose(): Promise<void>;
}

export interface SpoolOptions {
  /** 0 = unlimited (server.maxBodySize). */
  maxBytes: number;
  /** Where temporary files go; default os.tmpdir(). */
  dir?: string;
}

const noop = async (): Promise<void> => {};

/** Spools `body` to an unlinked temporary file and gives a stream over it with its exact length. */
export async function spoolBody(body: Readable, opts: SpoolOptions): Promise<PreparedBody> {
  const file = join(opts.dir ?? tmpdir(), `quiclb-body-${randomBytes(12).toString('hex')}`);
  // The body may fail (client gone) while the file is being opened: listen from the start, or its 'error'
  // would have no listener and escape as an uncaught exception. The iterator below sees the stored error.
  const noteError = (): void => undefined;
  body.on('error', noteError);
  try {
    return await spoolInto(body, file, opts);
  } finally {
    body.off('error', noteError);
  }
}

async function spoolInto(body: Readable, file: string, opts: SpoolOptions): Promise<PreparedBody> {
  let handle: FileHandle;
  try {
    handle = await open(file, 'wx+', 0o600);
  } catch (err) {
    body.pause();
    throw new SpoolError('QUICLB_SPOOL_IO', `cannot create a temporary file for a request body in ${opts.dir ?? tmpdir()}: ${(err as Error).message}`, { cause: err });
  }
  let closed = false;
  const dispose = async (): Promise<void> => {
    if (closed) return;
    closed = true;
    await handle.close().catch(() => {});
  };
  try {
    await unlink(file);
    let size = 0;
    try {
      // Async iteration reads one chunk at a time: the upload is paused while the disk is slower. Stopping
      // early (too large) leaves the stream to the caller, to discard or destroy.
      for await (const chunk of body.iterator({ destroyOnReturn: false }) as AsyncIterable<Buffer | string>) {
        const data = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
        size += data.length;
        if (opts.maxBytes > 0 && size > opts.maxBytes) {
          throw new SpoolError('QUICLB_SPOOL_TOO_LARGE', `request body larger than server.maxBodySize (${opts.maxBytes} bytes)`);
        }
        try {
          await handle.write(data, 0, data.length, null);
        } catch (err) {
          throw new SpoolError('QUICLB_SPOOL_IO', `writing a request body to a temporary file failed: ${(err as Error).message}`, { cause: err });
        }
      }
    } catch (err) {
      if (err instanceof SpoolError) throw err;
      throw new SpoolError('QUICLB_SPOOL_BODY_FAILED', `the request body failed while being spooled: ${(err as Error).message}`, { cause: err });
    }
    const stream = handle.createReadStream({ start: 0, autoClose: false });
    stream.once('close', () => void dispose());
    return { body: stream, contentLength: size, spooled: true, dispose };
  } catch (err) {
    await dispose();
    throw err;
  }
}

/**
 * The body to hand to FastCgiPool.dispatch: none, the stream itself when the request says its length, else a
 * spooled copy. A content-length above maxBytes is the frontend's 413 and is not checked again here.
 */
export async function prepareFastCgiBody(req: FrontRequest, opts: SpoolOptions): Promise<PreparedBody> {
  if (req.body === null) return { body: null, contentLength: 0, spooled: false, dispose: noop };
  const cl = req.headers.find(([n]) => n === 'content-length')?.[1];
  if (cl !== undefined && /^\d{1,15}$/.test(cl)) return { body: req.body, contentLength: Number(cl), spooled: false, dispose: noop };
  return spoolBody(req.body, opts);
}
