// WebSocket clients for the tests, one per way a browser can reach quiclb: HTTP/2 extended CONNECT
// (RFC 8441) with node:http2, HTTP/3 extended CONNECT (RFC 9220) with the bench's HTTP/3 client, and a raw
// HTTP/1.1 handshake on a TCP or TLS socket (for what undici's WebSocket hides: the exact answer, the bytes).
// Each gives a WsPeer (test/support/ws-peer.ts) speaking as a client (masked frames).
import http2 from 'node:http2';
import net from 'node:net';
import tls from 'node:tls';
import { randomBytes } from 'node:crypto';
import { Duplex } from 'node:stream';
import type { H3Connection, H3Stream } from '../../bench/lib/h3-client.ts';
import { WsPeer } from './ws-peer.ts';

export interface WsOpen {
  status: number;
  /** Response fields (lowercase names). */
  headers: Record<string, string | string[] | undefined>;
  /** Only for a 2xx / 101. */
  peer: WsPeer | undefined;
  close(): void;
}

/** WebSocket over HTTP/2: CONNECT with :protocol websocket once the server's SETTINGS allow it. */
export async function h2WebSocket(port: number, path: string, fields: Record<string, string> = {}): Promise<WsOpen & { enableConnectProtocol: boolean }> {
  const session = http2.connect(`https://127.0.0.1:${port}`, { rejectUnauthorized: false });
  session.on('error', () => undefined);
  const settings = await new Promise<http2.Settings>((resolve, reject) => {
    session.once('remoteSettings', resolve);
    session.once('error', reject);
  });
  if (!settings.enableConnectProtocol) {
    return { status: 0, headers: {}, peer: undefined, enableConnectProtocol: false, close: () => session.destroy() };
  }
  const stream = session.request({
    ':method': 'CONNECT',
    ':protocol': 'websocket',
    ':scheme': 'https',
    ':authority': `127.0.0.1:${port}`,
    ':path': path,
    'sec-websocket-version': '13',
    ...fields,
  });
  stream.on('error', () => undefined);
  const head = await new Promise<http2.IncomingHttpHeaders & http2.IncomingHttpStatusHeader>((resolve, reject) => {
    stream.once('response', resolve);
    stream.once('close', () => reject(new Error(`HTTP/2 stream closed before a response (RST code ${stream.rstCode})`)));
  });
  const status = Number(head[':status']);
  const headers: Record<string, string | string[] | undefined> = {};
  for (const [k, v] of Object.entries(head)) if (!k.startsWith(':')) headers[k] = v as string | string[];
  const peer = status >= 200 && status < 300 ? new WsPeer(stream, { client: true }) : undefined;
  if (peer === undefined) stream.resume();
  return { status, headers, peer, enableConnectProtocol: true, close: () => session.close() };
}

/** The client side of an HTTP/3 request stream as a Duplex: writes become DATA frames, DATA payloads are read. */
class H3ClientStream extends Duplex {
  h3: H3Stream | undefined;
  private pending: Array<{ chunk: Buffer; cb: () => void }> = [];

  attach(s: H3Stream): void {
    this.h3 = s;
    for (const p of this.pending) {
      s.send(p.chunk);
      p.cb();
    }
    this.pending = [];
  }

  _read(): void {}

  _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    if (this.h3 === undefined) this.pending.push({ chunk, cb: () => cb() });
    else {
      this.h3.send(chunk);
      cb();
    }
  }

  _final(cb: (err?: Error | null) => void): void {
    this.h3?.end();
    cb();
  }
}

/** WebSocket over HTTP/3 on an open connection: CONNECT with :protocol websocket, the stream left open. */
export async function h3WebSocket(conn: H3Connection, port: number, path: string, fields: Array<[string, string]> = [], early?: Buffer): Promise<WsOpen> {
  const duplex = new H3ClientStream();
  let resolveHead!: (v: { status: number; headers: Array<[string, string]> }) => void;
  const headSeen = new Promise<{ status: number; headers: Array<[string, string]> }>((r) => (resolveHead = r));
  const s = await conn.openStream({
    path,
    rawFields: [
      [':method', 'CONNECT'],
      [':protocol', 'websocket'],
      [':scheme', 'https'],
      [':authority', `127.0.0.1:${port}`],
      [':path', path],
      ['sec-websocket-version', '13'],
      ...fields,
    ],
    endStream: false,
    // Bytes sent in a DATA frame right behind HEADERS, before any answer (a client that does not wait).
    body: early,
    onResponseHead: (status, headers) => resolveHead({ status, headers }),
    onData: (chunk) => duplex.push(chunk),
  });
  duplex.attach(s);
  s.response.then(
    () => duplex.push(null),
    (err: Error) => duplex.destroy(err),
  );
  const head = await Promise.race([
    headSeen,
    s.response.then(
      (r) => ({ status: r.status, headers: r.headers }),
      (err: Error) => {
        throw err;
      },
    ),
  ]);
  const headers: Record<string, string | string[] | undefined> = {};
  for (const [k, v] of head.headers) if (!k.startsWith(':')) headers[k] = v;
  const peer = head.status >= 200 && head.status < 300 ? new WsPeer(duplex, { client: true }) : undefined;
  return { status: head.status, headers, peer, close: () => duplex.destroy() };
}

export interface RawUpgrade {
  socket: net.Socket;
  /** The response head as received. */
  head: string;
  status: number;
  /** Bytes that followed the head in the same reads. */
  rest: Buffer;
}

/** Sends `request` (a full HTTP/1.1 request head) and reads the response head. */
export async function rawHttp1(port: number, request: string, useTls = false): Promise<RawUpgrade> {
  const socket: net.Socket = useTls
    ? tls.connect({ host: '127.0.0.1', port, rejectUnauthorized: false, ALPNProtocols: ['http/1.1'] })
    : net.connect(port, '127.0.0.1');
  socket.on('error', () => undefined);
  await new Promise<void>((resolve, reject) => {
    socket.once(useTls ? 'secureConnect' : 'connect', () => resolve());
    socket.once('error', reject);
  });
  socket.write(request);
  let buf = Buffer.alloc(0);
  return await new Promise<RawUpgrade>((resolve, reject) => {
    const onData = (chunk: Buffer): void => {
      buf = Buffer.concat([buf, chunk]);
      const end = buf.indexOf('\r\n\r\n');
      if (end < 0) return;
      socket.off('data', onData);
      socket.pause();
      const head = buf.subarray(0, end + 4).toString('latin1');
      resolve({ socket, head, status: Number(head.split(' ')[1]), rest: buf.subarray(end + 4) });
    };
    socket.on('data', onData);
    socket.once('close', () => reject(new Error(`connection closed before a response head; got ${JSON.stringify(buf.toString('latin1'))}`)));
  });
}

/** A WebSocket handshake request head for HTTP/1.1. */
export function handshakeRequest(port: number, path: string, extra: string[] = []): { request: string; key: string } {
  const key = randomBytes(16).toString('base64');
  const request = [
    `GET ${path} HTTP/1.1`,
    `Host: 127.0.0.1:${port}`,
    'Upgrade: websocket',
    'Connection: Upgrade',
    `Sec-WebSocket-Key: ${key}`,
    'Sec-WebSocket-Version: 13',
    ...extra,
    '',
    '',
  ].join('\r\n');
  return { request, key };
}
