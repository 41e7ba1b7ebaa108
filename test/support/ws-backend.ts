// A WebSocket backend for tests: node:http parses the handshake, the test decides the answer (101 by
// default, with the right Sec-WebSocket-Accept and the first subprotocol offered), and each accepted
// connection is a WsPeer (test/support/ws-peer.ts) that echoes every message and answers a close with a
// close, unless the test takes the connection over. Plain requests get a small HTML page (Chromium loads
// one before it opens its WebSocket). Every handshake and every peer is recorded.
import http from 'node:http';
import type { Socket } from 'node:net';
import { createHash } from 'node:crypto';
import { freePort } from '../../bench/lib/procs.ts';
import { WsPeer } from './ws-peer.ts';

export interface Handshake {
  path: string;
  /** Lowercase names, as node:http gives them. */
  headers: http.IncomingHttpHeaders;
}

export interface WsBackendOptions {
  /** A raw HTTP answer instead of the 101 (a refused handshake), or undefined to accept. */
  refuse?(h: Handshake): string | undefined;
  /** Runs for each accepted connection instead of the echo. */
  onPeer?(peer: WsPeer, h: Handshake): void;
  /** Answer with a Sec-WebSocket-Accept that does not match the key. */
  badAccept?(h: Handshake): boolean;
  /** Raw bytes written right after the 101 head, in the same write. */
  afterHead?(h: Handshake): Buffer | undefined;
}

export interface WsBackend {
  port: number;
  handshakes: Handshake[];
  peers: WsPeer[];
  /** Plain (non-upgrade) requests received. */
  plain: Handshake[];
  close(): Promise<void>;
}

export function acceptFor(key: string): string {
  return createHash('sha1').update(`${key}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest('base64');
}

/** Echoes messages until the client closes, then answers the close (RFC 6455 §5.5.1). */
export async function echo(peer: WsPeer): Promise<void> {
  for (;;) {
    const m = await peer.next(120_000).catch(() => undefined);
    if (m === undefined) break;
    if (m.binary) peer.sendBinary(m.data);
    else peer.sendText(m.data.toString());
  }
  if (peer.closeCode !== undefined) peer.close(peer.closeCode === 1005 ? 1000 : peer.closeCode);
  else peer.stream.destroy();
}

export async function startWsBackend(opts: WsBackendOptions = {}): Promise<WsBackend> {
  const port = await freePort();
  const handshakes: Handshake[] = [];
  const peers: WsPeer[] = [];
  const plain: Handshake[] = [];
  const sockets = new Set<Socket>();
  const server = http.createServer((req, res) => {
    plain.push({ path: req.url ?? '', headers: req.headers });
    const body = `<!doctype html><title>ws backend</title><p>backend ${port} path=${req.url}</p>\n`;
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'content-length': Buffer.byteLength(body), 'x-backend': String(port) });
    res.end(body);
  });
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
  });
  server.on('upgrade', (req: http.IncomingMessage, socket: Socket, head: Buffer) => {
    socket.on('error', () => undefined);
    const h: Handshake = { path: req.url ?? '', headers: req.headers };
    handshakes.push(h);
    const refusal = opts.refuse?.(h);
    if (refusal !== undefined) {
      socket.end(refusal);
      return;
    }
    const key = String(req.headers['sec-websocket-key'] ?? '');
    const offered = String(req.headers['sec-websocket-protocol'] ?? '')
      .split(',')
      .map((p) => p.trim())
      .filter((p) => p !== '');
    const lines = [
      'HTTP/1.1 101 Switching Protocols',
      'Upgrade: websocket',
      'Connection: Upgrade',
      `Sec-WebSocket-Accept: ${opts.badAccept?.(h) ? acceptFor(`${key}x`) : acceptFor(key)}`,
      `X-Backend: ${port}`,
      ...(offered.length > 0 ? [`Sec-WebSocket-Protocol: ${offered[0]}`] : []),
      // The one extension this backend "supports" (it changes nothing in the frames): accepted when offered.
      ...(String(req.headers['sec-websocket-extensions'] ?? '').includes('x-test-ext') ? ['Sec-WebSocket-Extensions: x-test-ext'] : []),
    ];
    const after = opts.afterHead?.(h);
    socket.write(Buffer.concat([Buffer.from(`${lines.join('\r\n')}\r\n\r\n`), after ?? Buffer.alloc(0)]));
    const peer = new WsPeer(socket, { client: false, head });
    peers.push(peer);
    if (opts.onPeer) opts.onPeer(peer, h);
    else void echo(peer);
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', () => resolve()));
  return {
    port,
    handshakes,
    peers,
    plain,
    async close() {
      for (const s of sockets) s.destroy();
      for (const p of peers) p.stream.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
