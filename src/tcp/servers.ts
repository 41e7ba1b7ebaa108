// The TCP frontends of one shard: plain HTTP/1.1 and TLS with ALPN h2 + http/1.1. The primary accepts
// and transfers each socket here; we hand it to the right node server with emit('connection').
import http from 'node:http';
import http2 from 'node:http2';
import type { Socket } from 'node:net';
import { readFileSync } from 'node:fs';
import type { Config } from '../config/types.ts';
import type { RequestHandler } from '../proxy/types.ts';
import { toFrontRequest, toFrontResponse } from './adapter.ts';

export type TcpKind = 'http' | 'https' | 'admin';

export interface TcpFrontendOptions {
  config: Config;
  shard: number;
  certFile: string;
  keyFile: string;
  /** 48 octets of TLS session ticket keys shared by every shard and restart (src/shared/key-ring.ts). */
  ticketKeys?: Buffer;
  onRequest: RequestHandler;
  /** Keep the shard's connection gauge (least-connections dispatch in the primary) current. */
  onConnectionOpen(): void;
  onConnectionClose(): void;
}

export class TcpFrontends {
  private readonly plain: http.Server;
  private readonly secure: http2.Http2SecureServer;
  private readonly sessions = new Set<http2.ServerHttp2Session>();
  private readonly sockets = new Set<Socket>();
  /** HTTP/1.1 request sockets (raw or TLS) -> requests in flight, so a drain can close idle keep-alives. */
  private readonly h1InFlight = new Map<Socket, number>();
  private readonly connectionKeys = new WeakMap<object, string>();
  private nextConnection = 0;
  private draining = false;
  private readonly opts: TcpFrontendOptions;

  constructor(opts: TcpFrontendOptions) {
    this.opts = opts;
    const s = opts.config.server;
    const handle = (req: http.IncomingMessage | http2.Http2ServerRequest, res: http.ServerResponse | http2.Http2ServerResponse, scheme: 'http' | 'https') => {
      const socket = req.socket as Socket;
      if (req.httpVersionMajor === 1) this.trackH1(socket, res);
      opts.onRequest(toFrontRequest(req, scheme, opts.shard, this.keyFor(socket)), toFrontResponse(res, s.writeTimeoutMs));
    };
    this.plain = http.createServer(
      {
        maxHeaderSize: s.maxHeaderSize,
        requestTimeout: 0,
        headersTimeout: s.readTimeoutMs,
        keepAliveTimeout: s.idleTimeoutMs,
      },
      (req, res) => handle(req, res, 'http'),
    );
    this.plain.timeout = s.idleTimeoutMs;
    this.secure = http2.createSecureServer(
      {
        cert: readFileSync(opts.certFile),
        key: readFileSync(opts.keyFile),
        ticketKeys: opts.ticketKeys,
        allowHTTP1: true,
        ALPNProtocols: ['h2', 'http/1.1'],
        minVersion: 'TLSv1.2',
        maxSessionMemory: 64,
        settings: { maxConcurrentStreams: 250, maxHeaderListSize: s.maxHeaderSize, enableConnectProtocol: false },
        maxHeaderSize: s.maxHeaderSize,
        // Half the handshake work per stalled client: drop TLS that does not finish.
        handshakeTimeout: Math.min(s.readTimeoutMs, 10_000),
      } as http2.SecureServerOptions,
      (req, res) => handle(req, res, 'https'),
    );
    this.secure.setTimeout(s.idleTimeoutMs);
    this.secure.on('session', (session: http2.ServerHttp2Session) => {
      this.sessions.add(session);
      session.once('close', () => this.sessions.delete(session));
    });
    // TLS handshake failures and client resets are the client's problem, not a shard crash.
    this.secure.on('tlsClientError', () => undefined);
    this.secure.on('clientError', () => undefined);
    this.plain.on('clientError', (_err, socket) => {
      if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-length: 0\r\n\r\n');
      else socket.destroy();
    });
  }

  private keyFor(socket: Socket): string {
    let key = this.connectionKeys.get(socket);
    if (!key) {
      key = `tcp-${this.opts.shard}-${this.nextConnection++}`;
      this.connectionKeys.set(socket, key);
    }
    return key;
  }

  private trackH1(socket: Socket, res: http.ServerResponse | http2.Http2ServerResponse): void {
    if (!this.h1InFlight.has(socket)) socket.once('close', () => this.h1InFlight.delete(socket));
    this.h1InFlight.set(socket, (this.h1InFlight.get(socket) ?? 0) + 1);
    if (this.draining) (res as http.ServerResponse).shouldKeepAlive = false;
    res.once('close', () => {
      const left = (this.h1InFlight.get(socket) ?? 1) - 1;
      this.h1InFlight.set(socket, left);
      if (this.draining && left === 0) socket.end();
    });
  }

  accept(socket: Socket, kind: TcpKind): void {
    this.sockets.add(socket);
    this.opts.onConnectionOpen();
    socket.once('close', () => {
      this.sockets.delete(socket);
      this.opts.onConnectionClose();
    });
    socket.on('error', () => undefined);
    socket.setNoDelay(true);
    (kind === 'https' ? this.secure : this.plain).emit('connection', socket);
    socket.resume();
  }

  connectionCount(): number {
    return this.sockets.size;
  }

  /** Stop new requests: HTTP/2 GOAWAY, HTTP/1.1 keep-alive ends after the current response. */
  drain(): void {
    this.draining = true;
    // GOAWAY, then close once the open streams are done (session.close() waits for them).
    for (const session of this.sessions) {
      session.goaway(http2.constants.NGHTTP2_NO_ERROR);
      session.close();
    }
    for (const [socket, inFlight] of this.h1InFlight) if (inFlight === 0) socket.end();
    this.plain.closeIdleConnections();
    this.secure.close();
    this.plain.close();
  }

  /** Force-close whatever is still open after the drain timeout. */
  destroyAll(): void {
    for (const session of this.sessions) session.destroy();
    for (const socket of this.sockets) socket.destroy();
  }
}
