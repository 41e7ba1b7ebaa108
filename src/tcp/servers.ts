// The TCP frontends of one shard: plain HTTP/1.1 and TLS with ALPN h2 + http/1.1. The primary accepts
// and transfers each socket here; we hand it to the right node server with emit('connection'), and TLS
// connections that negotiated h2 to the HTTP/2 frontend (src/tcp/h2).
import http from 'node:http';
import tls from 'node:tls';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { readFileSync } from 'node:fs';
import type { Config } from '../config/types.ts';
import { frontendLimits } from '../config/limits.ts';
import type { RequestHandler } from '../proxy/types.ts';
import { createLogger } from '../shared/logger.ts';
import type { Logger } from '../shared/logger.ts';
import { toFrontRequest, toFrontResponse } from './adapter.ts';
import { H2Frontend } from './h2/frontend.ts';

export type TcpKind = 'http' | 'https' | 'admin';

export interface TcpFrontendOptions {
  config: Config;
  shard: number;
  certFile: string;
  keyFile: string;
  onRequest: RequestHandler;
  logger?: Logger;
  /** Keep the shard's connection gauge (least-connections dispatch in the primary) current. */
  onConnectionOpen(): void;
  onConnectionClose(): void;
}

export class TcpFrontends {
  private readonly plain: http.Server;
  private readonly secure: tls.Server;
  /** HTTP/1.1 over TLS (ALPN http/1.1 or none). */
  private readonly secureH1: http.Server;
  private readonly h2: H2Frontend;
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
    const limits = frontendLimits(opts.config);
    const handle = (req: http.IncomingMessage, res: http.ServerResponse, scheme: 'http' | 'https') => {
      const socket = req.socket as Socket;
      this.trackH1(socket, res);
      opts.onRequest(toFrontRequest(req, scheme, opts.shard, this.keyFor(socket)), toFrontResponse(res, s.writeTimeoutMs));
    };
    const h1Options: http.ServerOptions = {
      maxHeaderSize: s.maxHeaderSize,
      requestTimeout: 0,
      headersTimeout: s.readTimeoutMs,
      keepAliveTimeout: s.idleTimeoutMs,
    };
    this.plain = http.createServer(h1Options, (req, res) => handle(req, res, 'http'));
    this.plain.timeout = s.idleTimeoutMs;
    this.secureH1 = http.createServer(h1Options, (req, res) => handle(req, res, 'https'));
    this.secureH1.timeout = s.idleTimeoutMs;
    this.h2 = new H2Frontend({
      limits,
      shard: opts.shard,
      onRequest: opts.onRequest,
      logger: opts.logger ?? createLogger(opts.config.logging, { shard: opts.shard }),
      connectionKey: (socket) => this.keyFor(socket),
    });
    this.secure = tls.createServer(
      {
        cert: readFileSync(opts.certFile),
        key: readFileSync(opts.keyFile),
        ALPNProtocols: ['h2', 'http/1.1'],
        minVersion: 'TLSv1.2',
        // Half the handshake work per stalled client: drop TLS that does not finish.
        handshakeTimeout: limits.handshakeTimeoutMs,
      },
      (socket) => {
        if (socket.alpnProtocol === 'h2') this.h2.accept(socket);
        else this.secureH1.emit('connection', socket);
      },
    );
    // TLS handshake failures and client resets are the client's problem, not a shard crash.
    this.secure.on('tlsClientError', () => undefined);
    const badRequest = (_err: Error, socket: Duplex) => {
      if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-length: 0\r\n\r\n');
      else socket.destroy();
    };
    this.plain.on('clientError', badRequest);
    this.secureH1.on('clientError', badRequest);
  }

  private keyFor(socket: Socket): string {
    let key = this.connectionKeys.get(socket);
    if (!key) {
      key = `tcp-${this.opts.shard}-${this.nextConnection++}`;
      this.connectionKeys.set(socket, key);
    }
    return key;
  }

  private trackH1(socket: Socket, res: http.ServerResponse): void {
    if (!this.h1InFlight.has(socket)) socket.once('close', () => this.h1InFlight.delete(socket));
    this.h1InFlight.set(socket, (this.h1InFlight.get(socket) ?? 0) + 1);
    if (this.draining) res.shouldKeepAlive = false;
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
    // GOAWAY, then close once the open streams are done.
    this.h2.drain();
    for (const [socket, inFlight] of this.h1InFlight) if (inFlight === 0) socket.end();
    this.plain.closeIdleConnections();
    this.secure.close();
    this.secureH1.close();
    this.plain.close();
  }

  /** Force-close whatever is still open after the drain timeout. */
  destroyAll(): void {
    this.h2.destroyAll();
    for (const socket of this.sockets) socket.destroy();
  }
}
