// A raw TCP HTTP/1.1 backend (answer-per-request flavour, used by the HTTP/2 tests; test/support/raw-backend.ts frames bodies and records completeness) for tests that need the exact bytes quiclb sends, or an answer no well-behaved
// server gives (a repeated single-value field). It reads request heads one after another on each
// connection (bodies by content-length; a chunked body is recorded, not parsed: that request is the
// connection's last), and answers each with what `answer` returns (nothing: it never answers).
import net from 'node:net';

export interface RawRequest {
  head: string;
  method: string;
  target: string;
  /** Names lowercased, in order. */
  headers: Array<[string, string]>;
  conn: RawBackendConnection;
}

export type RawAnswer = (req: RawRequest) => string | Buffer | undefined;

export class RawBackendConnection {
  readonly socket: net.Socket;
  /** Every byte received on this connection. */
  data: Buffer = Buffer.alloc(0);
  /** How the client side ended: a FIN ('end'), a reset or other error ('error'), once known. */
  ending: 'end' | 'error' | undefined;
  /** Resolves when the socket has closed. */
  readonly closed: Promise<void>;

  constructor(socket: net.Socket) {
    this.socket = socket;
    this.closed = new Promise((resolve) => socket.once('close', () => resolve()));
    socket.on('end', () => {
      this.ending ??= 'end';
      socket.end();
    });
    socket.on('error', () => {
      this.ending ??= 'error';
    });
  }

  text(): string {
    return this.data.toString('latin1');
  }
}

export interface RawBackend {
  host: string;
  port: number;
  connections: RawBackendConnection[];
  requests: RawRequest[];
  /** Resolves with the next request (or one already received and not yet taken). */
  nextRequest(timeoutMs?: number): Promise<RawRequest>;
  close(): Promise<void>;
}

export const OK_RESPONSE = 'HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 2\r\n\r\nok';

export async function startRawBackend(answer: RawAnswer = () => OK_RESPONSE): Promise<RawBackend> {
  const connections: RawBackendConnection[] = [];
  const requests: RawRequest[] = [];
  let taken = 0;
  const waiters = new Set<() => void>();
  const server = net.createServer((socket) => {
    const conn = new RawBackendConnection(socket);
    connections.push(conn);
    let pos = 0;
    let waitingBody = 0;
    let chunked = false;
    socket.on('data', (chunk: Buffer) => {
      conn.data = Buffer.concat([conn.data, chunk]);
      while (!chunked) {
        if (waitingBody > 0) {
          if (conn.data.length - pos < waitingBody) return;
          pos += waitingBody;
          waitingBody = 0;
          const last = requests[requests.length - 1];
          reply(last);
          continue;
        }
        const end = conn.data.indexOf('\r\n\r\n', pos, 'latin1');
        if (end < 0) return;
        const head = conn.data.subarray(pos, end).toString('latin1');
        pos = end + 4;
        const [requestLine, ...lines] = head.split('\r\n');
        const [method, target] = requestLine.split(' ');
        const headers = lines.map((l): [string, string] => {
          const colon = l.indexOf(':');
          return [l.slice(0, colon).trim().toLowerCase(), l.slice(colon + 1).trim()];
        });
        const req: RawRequest = { head, method, target, headers, conn };
        requests.push(req);
        for (const w of [...waiters]) w();
        const te = headers.find(([n]) => n === 'transfer-encoding');
        const cl = headers.find(([n]) => n === 'content-length');
        if (te) {
          chunked = true;
          return;
        }
        if (cl && Number(cl[1]) > 0) {
          waitingBody = Number(cl[1]);
          continue;
        }
        reply(req);
      }
    });
    const reply = (req: RawRequest) => {
      const out = answer(req);
      if (out !== undefined && !socket.destroyed) socket.write(out);
    };
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const port = (server.address() as net.AddressInfo).port;
  return {
    host: '127.0.0.1',
    port,
    connections,
    requests,
    nextRequest(timeoutMs = 5000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          if (taken < requests.length) {
            waiters.delete(check);
            clearTimeout(timer);
            resolve(requests[taken++]);
          }
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`no request reached the raw backend within ${timeoutMs} ms`));
        }, timeoutMs);
        waiters.add(check);
        check();
      });
    },
    async close() {
      for (const c of connections) c.socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
