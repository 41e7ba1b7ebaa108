// The backend behind quiclb during a fuzz run: node's own HTTP server, whose parser is llhttp in strict mode.
// It is also an oracle: whatever quiclb forwards must parse there, so every `clientError` it sees (a request
// quiclb passed on that a strict HTTP/1.1 parser refuses: a smuggling-shaped forward) is recorded with its
// bytes. The path picks the answer, so the fuzzers reach quiclb's response paths too.
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

export interface BackendParseError {
  code: string;
  /** The bytes the parser choked on (node's rawPacket), latin1, first 2 KiB. */
  raw: string;
  at: number;
}

export interface FuzzBackend {
  port: number;
  requests(): number;
  /** Requests quiclb cut off (its client went away). */
  aborted(): number;
  parseErrors: BackendParseError[];
  close(): Promise<void>;
}

const BIG = Buffer.alloc(256 * 1024, 0x62);

export async function startFuzzBackend(): Promise<FuzzBackend> {
  let requests = 0;
  let aborted = 0;
  const parseErrors: BackendParseError[] = [];
  const sockets = new Set<Socket>();
  // quiclb adds X-Forwarded-*/Forwarded fields: room above its own 16 KiB maxHeaderSize, so only a real parse
  // problem (not a size one) is reported.
  const server = http.createServer({ maxHeaderSize: 256 * 1024, requestTimeout: 0, headersTimeout: 60_000, keepAliveTimeout: 65_000 }, (req, res) => {
    requests++;
    res.on('error', () => undefined);
    req.on('error', () => undefined);
    const path = (req.url ?? '/').split('?')[0];
    const answer = (): void => {
      switch (path) {
        case '/204':
          res.writeHead(204).end();
          return;
        case '/304':
          res.writeHead(304, { etag: '"x"' }).end();
          return;
        case '/big':
          res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': BIG.length }).end(BIG);
          return;
        case '/chunked':
          res.writeHead(200, { 'content-type': 'text/html' });
          res.write('<p>part one</p>');
          setTimeout(() => res.end('<p>part two</p>'), 5);
          return;
        case '/slow':
          setTimeout(() => res.writeHead(200, { 'content-type': 'text/plain', 'content-length': 4 }).end('slow'), 300);
          return;
        case '/close':
          res.writeHead(200, { connection: 'close', 'content-length': 2 }).end('ok');
          return;
        default:
          res.writeHead(200, { 'content-type': 'text/plain', 'content-length': 2 }).end('ok');
      }
    };
    if (path === '/early') {
      // Answers before reading the body (quiclb must then discard or stop the rest).
      res.writeHead(401, { 'content-length': 0 }).end();
      req.resume();
      return;
    }
    req.resume();
    req.on('end', answer);
  });
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  server.on('clientError', (err: NodeJS.ErrnoException & { rawPacket?: Buffer }, socket) => {
    // quiclb cutting a request whose client went away (RST, EPIPE, or EOF inside the message: node reports
    // HPE_INVALID_EOF_STATE with nothing unparsed) or a timeout: an abort, not a parse error.
    if (err.code === 'ECONNRESET' || err.code === 'EPIPE' || err.code === 'ERR_HTTP_REQUEST_TIMEOUT' || err.code === 'HPE_INVALID_EOF_STATE') {
      aborted++;
      socket.destroy();
      return;
    }
    parseErrors.push({ code: err.code ?? String(err), raw: err.rawPacket ? err.rawPacket.subarray(0, 2048).toString('latin1') : '', at: Date.now() });
    socket.destroy();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    requests: () => requests,
    aborted: () => aborted,
    parseErrors,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
