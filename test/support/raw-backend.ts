// A raw-TCP HTTP/1.1 test backend that records the exact bytes each connection receives, and answers what a
// test tells it to (also things a well-behaved server never sends: duplicate fields, interim responses,
// early answers). It frames requests itself (Content-Length or chunked) so a test can tell a complete
// request from a truncated one: `complete` is true only when the final chunk / all declared bytes arrived.
import net from 'node:net';
import { freePort } from '../../bench/lib/procs.ts';

export interface RecordedRequest {
  /** Request line + header section, as received. */
  head: string;
  method: string;
  target: string;
  headers: Array<[string, string]>;
  /** Body bytes as framed on the wire (decoded from chunked). */
  body: Buffer;
  /** The message framing completed (final chunk seen / content-length reached). */
  complete: boolean;
  /** The connection closed (FIN) or was reset before the message completed. */
  aborted: boolean;
  chunked: boolean;
}

export interface RawBackendOptions {
  /**
   * The raw response for a request whose header section arrived; called at once (before the body) when
   * `answerEarly` is set, else after the whole body. Return undefined to send nothing.
   */
  respond?(req: RecordedRequest): string | Buffer | undefined;
  answerEarly?: boolean;
}

export interface RawBackend {
  port: number;
  requests: RecordedRequest[];
  /** Every byte each connection received, in order. */
  connections: Buffer[];
  /** Whether each connection (same index) has closed. */
  closed: boolean[];
  close(): Promise<void>;
}

export const OK_RESPONSE = 'HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 2\r\n\r\nok';

export async function startRawBackend(opts: RawBackendOptions = {}): Promise<RawBackend> {
  const port = await freePort();
  const requests: RecordedRequest[] = [];
  const connections: Buffer[] = [];
  const closed: boolean[] = [];
  const sockets = new Set<net.Socket>();
  const respond = opts.respond ?? (() => OK_RESPONSE);
  const server = net.createServer((socket) => {
    sockets.add(socket);
    const index = connections.push(Buffer.alloc(0)) - 1;
    closed.push(false);
    let buf = Buffer.alloc(0);
    let current: (RecordedRequest & { need: number; chunkState: 'size' | 'data' | 'crlf' | 'trailer'; chunkLeft: number }) | undefined;
    const answer = (req: RecordedRequest) => {
      const out = respond(req);
      if (out !== undefined && !socket.destroyed) socket.write(out);
    };
    const pump = () => {
      for (;;) {
        if (current === undefined) {
          const end = buf.indexOf('\r\n\r\n');
          if (end < 0) return;
          const head = buf.subarray(0, end + 4).toString('latin1');
          buf = buf.subarray(end + 4);
          const lines = head.split('\r\n');
          const [method = '', target = ''] = lines[0].split(' ');
          const headers: Array<[string, string]> = [];
          for (const line of lines.slice(1)) {
            const c = line.indexOf(':');
            if (c > 0) headers.push([line.slice(0, c).trim().toLowerCase(), line.slice(c + 1).trim()]);
          }
          const te = headers.find(([n]) => n === 'transfer-encoding');
          const cl = headers.find(([n]) => n === 'content-length');
          const chunked = te !== undefined && /chunked/i.test(te[1]);
          current = { head, method, target, headers, body: Buffer.alloc(0), complete: false, aborted: false, chunked, need: chunked ? -1 : Number(cl?.[1] ?? 0), chunkState: 'size', chunkLeft: 0 };
          requests.push(current);
          if (opts.answerEarly) answer(current);
        }
        const r = current;
        if (!r.chunked) {
          const take = Math.min(r.need, buf.length);
          r.body = Buffer.concat([r.body, buf.subarray(0, take)]);
          buf = buf.subarray(take);
          r.need -= take;
          if (r.need > 0) return;
        } else {
          for (;;) {
            if (r.chunkState === 'size') {
              const nl = buf.indexOf('\r\n');
              if (nl < 0) return;
              r.chunkLeft = parseInt(buf.subarray(0, nl).toString('latin1'), 16);
              buf = buf.subarray(nl + 2);
              r.chunkState = r.chunkLeft === 0 ? 'trailer' : 'data';
            } else if (r.chunkState === 'data') {
              const take = Math.min(r.chunkLeft, buf.length);
              r.body = Buffer.concat([r.body, buf.subarray(0, take)]);
              buf = buf.subarray(take);
              r.chunkLeft -= take;
              if (r.chunkLeft > 0) return;
              r.chunkState = 'crlf';
            } else if (r.chunkState === 'crlf') {
              if (buf.length < 2) return;
              buf = buf.subarray(2);
              r.chunkState = 'size';
            } else {
              const nl = buf.indexOf('\r\n');
              if (nl < 0) return;
              buf = buf.subarray(nl + 2);
              if (nl === 0) break; // end of (empty) trailer section
            }
          }
        }
        r.complete = true;
        current = undefined;
        if (!opts.answerEarly) answer(r);
      }
    };
    socket.on('data', (chunk: Buffer) => {
      connections[index] = Buffer.concat([connections[index], chunk]);
      buf = Buffer.concat([buf, chunk]);
      pump();
    });
    socket.on('error', () => undefined);
    socket.on('close', () => {
      closed[index] = true;
      sockets.delete(socket);
      if (current !== undefined && !current.complete) current.aborted = true;
    });
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  return {
    port,
    requests,
    connections,
    closed,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

/** Sends raw bytes to host:port and returns everything received until the server closes (or the timeout). */
export function rawExchange(port: number, data: string | Buffer, timeoutMs = 3000, host = '127.0.0.1'): Promise<{ text: string; closed: boolean; ms: number }> {
  return new Promise((resolve) => {
    const started = Date.now();
    const socket = net.connect(port, host);
    const chunks: Buffer[] = [];
    let closed = false;
    const timer = setTimeout(() => {
      socket.destroy();
    }, timeoutMs);
    socket.on('connect', () => socket.write(data));
    socket.on('data', (c) => chunks.push(c));
    socket.on('error', () => undefined);
    socket.on('end', () => {
      closed = true;
    });
    socket.on('close', () => {
      clearTimeout(timer);
      resolve({ text: Buffer.concat(chunks).toString('latin1'), closed: closed || Date.now() - started < timeoutMs, ms: Date.now() - started });
    });
  });
}
