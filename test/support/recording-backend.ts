// A raw TCP HTTP/1.1 backend for tests that must see exactly what the proxy sent: it records every byte of
// every connection, parses the requests just enough to know where each ends (content-length or chunked,
// RFC 9112 §6), and answers each complete request with a small 200 unless told to wait or never answer.
// "How did the connection end" is part of the record: a request aborted by the proxy shows up as an
// incomplete request on a connection the proxy closed or reset.
//
// A request's query string can change how it is answered, so one backend serves several tests:
// `answer=complete|headers|never`, `delay=MS`, `bytes=N` (a body of N bytes), and `hdr=Name:%20value`
// (repeatable) for extra response header lines.
import net from 'node:net';

export interface RecordedRequest {
  method: string;
  path: string;
  /** Header lines as received (names lowercased). */
  headers: Array<[string, string]>;
  /** Body bytes received so far (chunk framing removed). */
  body: Buffer;
  /** True once the whole body arrived (content-length reached or the last chunk seen). */
  complete: boolean;
  chunked: boolean;
}

export interface RecordedConnection {
  id: number;
  /** Every byte received, in order. */
  bytes: Buffer;
  requests: RecordedRequest[];
  /** How the connection ended: 'end' (FIN from the proxy), 'reset' (ECONNRESET), or null while open. */
  ended: 'end' | 'reset' | 'error' | null;
}

export interface RecordingBackendOptions {
  /**
   * When to answer a request: 'complete' (default) once its body is in; 'headers' as soon as its head
   * arrived; 'never' (the request hangs until the proxy gives up).
   */
  answer?: 'complete' | 'headers' | 'never';
  /** Wait this long before answering (ms). */
  delayMs?: number;
  /** Response body (default "ok\n"). */
  body?: string | Buffer;
  /** Extra response header lines, e.g. ['ETag: "a"', 'ETag: "b"']. */
  extraHeaders?: string[];
  /** A body of this many bytes instead of `body`. */
  bodyBytes?: number;
}

export interface RecordingBackend {
  port: number;
  connections: RecordedConnection[];
  /** Every request head parsed so far, over all connections. */
  requests(): RecordedRequest[];
  /** Resolves when pred() holds (checked after every received chunk and close), or rejects after timeoutMs. */
  waitFor(pred: () => boolean, timeoutMs?: number, what?: string): Promise<void>;
  close(): Promise<void>;
}

const CRLF2 = Buffer.from('\r\n\r\n');

/** Incremental request parser over one connection's bytes. */
class RequestParser {
  private buf: Buffer = Buffer.alloc(0);
  private current: RecordedRequest | null = null;
  private remaining = 0; // content-length bytes left, or bytes left in the current chunk
  private state: 'head' | 'length' | 'chunk-size' | 'chunk-data' | 'chunk-crlf' | 'trailers' = 'head';
  readonly requests: RecordedRequest[] = [];
  private readonly onHead: (r: RecordedRequest) => void;
  private readonly onComplete: (r: RecordedRequest) => void;

  constructor(onHead: (r: RecordedRequest) => void, onComplete: (r: RecordedRequest) => void) {
    this.onHead = onHead;
    this.onComplete = onComplete;
  }

  push(chunk: Buffer): void {
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
    for (;;) if (!this.step()) return;
  }

  private finish(r: RecordedRequest): void {
    r.complete = true;
    this.current = null;
    this.state = 'head';
    this.onComplete(r);
  }

  private step(): boolean {
    switch (this.state) {
      case 'head': {
        const end = this.buf.indexOf(CRLF2);
        if (end < 0) return false;
        const lines = this.buf.toString('latin1', 0, end).split('\r\n');
        this.buf = this.buf.subarray(end + 4);
        const [method = '', path = ''] = lines[0].split(' ');
        const headers: Array<[string, string]> = lines.slice(1).map((l) => {
          const i = l.indexOf(':');
          return [l.slice(0, i).trim().toLowerCase(), l.slice(i + 1).trim()];
        });
        const te = headers.find(([n]) => n === 'transfer-encoding')?.[1] ?? '';
        const cl = headers.find(([n]) => n === 'content-length')?.[1];
        const r: RecordedRequest = { method, path, headers, body: Buffer.alloc(0), complete: false, chunked: /chunked/i.test(te) };
        this.requests.push(r);
        this.current = r;
        this.onHead(r);
        if (r.chunked) this.state = 'chunk-size';
        else if (cl !== undefined && Number(cl) > 0) {
          this.remaining = Number(cl);
          this.state = 'length';
        } else this.finish(r);
        return true;
      }
      case 'length': {
        if (this.buf.length === 0) return false;
        const take = Math.min(this.remaining, this.buf.length);
        const r = this.current!;
        r.body = Buffer.concat([r.body, this.buf.subarray(0, take)]);
        this.buf = this.buf.subarray(take);
        this.remaining -= take;
        if (this.remaining === 0) this.finish(r);
        return true;
      }
      case 'chunk-size': {
        const nl = this.buf.indexOf('\r\n');
        if (nl < 0) return false;
        const size = parseInt(this.buf.toString('latin1', 0, nl).split(';')[0], 16);
        this.buf = this.buf.subarray(nl + 2);
        if (size === 0) this.state = 'trailers';
        else {
          this.remaining = size;
          this.state = 'chunk-data';
        }
        return true;
      }
      case 'chunk-data': {
        if (this.buf.length === 0) return false;
        const take = Math.min(this.remaining, this.buf.length);
        const r = this.current!;
        r.body = Buffer.concat([r.body, this.buf.subarray(0, take)]);
        this.buf = this.buf.subarray(take);
        this.remaining -= take;
        if (this.remaining === 0) this.state = 'chunk-crlf';
        return true;
      }
      case 'chunk-crlf': {
        if (this.buf.length < 2) return false;
        this.buf = this.buf.subarray(2);
        this.state = 'chunk-size';
        return true;
      }
      case 'trailers': {
        const nl = this.buf.indexOf('\r\n');
        if (nl < 0) return false;
        this.buf = this.buf.subarray(nl + 2);
        if (nl === 0) this.finish(this.current!);
        return true;
      }
    }
  }
}

export async function startRecordingBackend(opts: RecordingBackendOptions = {}): Promise<RecordingBackend> {
  const connections: RecordedConnection[] = [];
  const sockets = new Set<net.Socket>();
  const waiters = new Set<() => void>();
  const notify = (): void => {
    for (const w of waiters) w();
  };
  const behaviour = (r: RecordedRequest) => {
    const q = new URL(r.path, 'http://x').searchParams;
    const bytes = q.get('bytes') ?? (opts.bodyBytes !== undefined ? String(opts.bodyBytes) : null);
    const body = bytes !== null ? Buffer.alloc(Number(bytes), 0x61) : Buffer.from(opts.body ?? 'ok\n');
    const lines = ['HTTP/1.1 200 OK', 'Content-Type: text/plain', `Content-Length: ${body.length}`, ...(opts.extraHeaders ?? []), ...q.getAll('hdr')];
    return {
      answer: (q.get('answer') ?? opts.answer ?? 'complete') as 'complete' | 'headers' | 'never',
      delayMs: Number(q.get('delay') ?? opts.delayMs ?? 0),
      response: Buffer.concat([Buffer.from([...lines, '', ''].join('\r\n'), 'latin1'), body]),
    };
  };
  const server = net.createServer((sock) => {
    sockets.add(sock);
    const rec: RecordedConnection = { id: connections.length, bytes: Buffer.alloc(0), requests: [], ended: null };
    connections.push(rec);
    const reply = (r: RecordedRequest): void => {
      const b = behaviour(r);
      const send = (): void => {
        if (!sock.destroyed) sock.write(b.response);
      };
      if (b.delayMs > 0) setTimeout(send, b.delayMs);
      else send();
    };
    const parser = new RequestParser(
      (r) => {
        rec.requests.push(r);
        if (behaviour(r).answer === 'headers') reply(r);
      },
      (r) => {
        if (behaviour(r).answer === 'complete') reply(r);
      },
    );
    sock.on('data', (chunk: Buffer) => {
      rec.bytes = Buffer.concat([rec.bytes, chunk]);
      parser.push(chunk);
      notify();
    });
    sock.on('end', () => {
      rec.ended ??= 'end';
      sock.end();
      notify();
    });
    sock.on('error', (err: NodeJS.ErrnoException) => {
      rec.ended ??= err.code === 'ECONNRESET' ? 'reset' : 'error';
      notify();
    });
    sock.on('close', () => {
      rec.ended ??= 'end';
      sockets.delete(sock);
      notify();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  return {
    port,
    connections,
    requests: () => connections.flatMap((c) => c.requests),
    waitFor: (pred, timeoutMs = 10_000, what = 'condition') =>
      new Promise<void>((resolve, reject) => {
        const check = (): void => {
          if (!pred()) return;
          waiters.delete(check);
          clearTimeout(timer);
          resolve();
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`recording backend: timed out waiting for ${what}`));
        }, timeoutMs);
        waiters.add(check);
        check();
      }),
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
