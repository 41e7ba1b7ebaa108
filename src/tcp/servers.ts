// The TCP side of one shard. The primary accepts each connection and transfers the socket here: plain
// sockets (HTTP port, admin port) go straight to the HTTP/1.1 frontend (src/tcp/h1); on the HTTPS port quiclb
// terminates TLS itself and routes by ALPN: h2 to the HTTP/2 frontend (src/tcp/h2), http/1.1 (or no ALPN)
// to the HTTP/1.1 frontend.
// A TLS handshake that does not finish within handshakeTimeout is dropped (a client that connects and never
// sends a ClientHello costs one sweep check, then nothing). A configuration reload swaps the certificate
// and, when the key ring was rotated, the session ticket key (setCertificate): new handshakes get the new
// pair and tickets under the new key, established connections keep theirs.
import tls from 'node:tls';
import type { Socket } from 'node:net';
import { readFileSync } from 'node:fs';
import type { Config } from '../config/types.ts';
import type { FrontendLimits } from '../config/limits.ts';
import type { RequestHandler } from '../shared/http-types.ts';
import type { Logger } from '../shared/logger.ts';
import type { RateLimiter } from '../ratelimit/limiter.ts';
import { DeadlineSweeper } from './deadline-sweeper.ts';
import { H1Frontend } from './h1/frontend.ts';
import { H2Frontend } from './h2/frontend.ts';
import type { ClientResetLimiter } from '../shared/reset-budget.ts';

export type TcpKind = 'http' | 'https' | 'admin';

export interface TcpFrontendOptions {
  config: Config;
  limits: FrontendLimits;
  shard: number;
  certFile: string;
  keyFile: string;
  logger: Logger;
  /** 48 octets of TLS session ticket keys shared by every shard and restart (src/shared/key-ring.ts). */
  ticketKeys?: Buffer;
  /**
   * rateLimit.maxConnectionsPerClient, counted by socket peer across all shards (TCP and QUIC together); the
   * shard passes one that follows configuration reloads.
   */
  limiter: Pick<RateLimiter, 'acquireConnection'>;
  /** Stream resets per client address over every shard (HTTP/2 Rapid Reset budget). */
  resetLimiter?: ClientResetLimiter;
  onRequest: RequestHandler;
  /** Keep the shard's connection gauge (least-connections dispatch in the primary) current. */
  onConnectionOpen(): void;
  onConnectionClose(): void;
}

/** A TLS socket whose handshake has not finished yet. */
class PendingHandshake {
  readonly socket: Socket;
  readonly deadline: number;
  constructor(socket: Socket, deadline: number) {
    this.socket = socket;
    this.deadline = deadline;
  }
  check(now: number): void {
    if (now > this.deadline) this.socket.destroy();
  }
}

export class TcpFrontends {
  private readonly opts: TcpFrontendOptions;
  private readonly h1: H1Frontend;
  private readonly tls: tls.Server;
  private readonly h2: H2Frontend;
  private readonly handshakes: DeadlineSweeper<PendingHandshake>;
  private readonly sockets = new Set<Socket>();
  private readonly connectionKeys = new WeakMap<object, string>();
  private nextConnection = 0;
  private ticketKeys: Buffer | undefined;

  constructor(opts: TcpFrontendOptions) {
    this.opts = opts;
    this.ticketKeys = opts.ticketKeys;
    const limits = opts.limits;
    this.h1 = new H1Frontend({ limits, shard: opts.shard, onRequest: opts.onRequest, logger: opts.logger });
    this.handshakes = new DeadlineSweeper(limits.handshakeTimeoutMs);
    this.tls = tls.createServer({
      ...this.credentials(opts.certFile, opts.keyFile),
      ALPNProtocols: ['h2', 'http/1.1'],
      handshakeTimeout: limits.handshakeTimeoutMs,
    });
    // Handshake failures are the client's problem, not a shard's.
    this.tls.on('tlsClientError', () => undefined);
    this.tls.on('secureConnection', (socket: tls.TLSSocket) => this.onSecure(socket));

    const resets = opts.resetLimiter;
    this.h2 = new H2Frontend({
      limits,
      shard: opts.shard,
      onRequest: opts.onRequest,
      logger: opts.logger,
      connectionKey: (socket) => this.keyFor(socket),
      clientResets: resets === undefined ? undefined : { spend: (client, now, n) => resets.recordReset(client, now, n) },
    });
  }

  private credentials(certFile: string, keyFile: string, ticketKeys = this.ticketKeys): tls.SecureContextOptions {
    return { cert: readFileSync(certFile), key: readFileSync(keyFile), ticketKeys, minVersion: 'TLSv1.2' };
  }

  /**
   * New TLS handshakes use this certificate chain and key (tls.Server#setSecureContext) and issue and accept
   * session tickets under `ticketKeys` (the running ones when absent); connections already established keep
   * what they were made with. node:tls holds one ticket key, so after a change a ticket of the old key is
   * answered with a full handshake (and a ticket of the new key). Throws (and changes nothing) when the files
   * cannot be read or do not make a secure context.
   */
  setCertificate(certFile: string, keyFile: string, ticketKeys: Buffer | undefined = this.ticketKeys): void {
    this.tls.setSecureContext(this.credentials(certFile, keyFile, ticketKeys));
    this.ticketKeys = ticketKeys;
  }

  private keyFor(socket: object): string {
    let key = this.connectionKeys.get(socket);
    if (!key) {
      key = `tcp-${this.opts.shard}-${this.nextConnection++}`;
      this.connectionKeys.set(socket, key);
    }
    return key;
  }

  accept(socket: Socket, kind: TcpKind): void {
    if (!this.admit(socket, kind)) return;
    this.sockets.add(socket);
    this.opts.onConnectionOpen();
    socket.once('close', () => {
      this.sockets.delete(socket);
      this.opts.onConnectionClose();
    });
    socket.on('error', () => undefined);
    socket.setNoDelay(true);
    if (kind === 'https') {
      const pending = new PendingHandshake(socket, Date.now() + this.opts.limits.handshakeTimeoutMs);
      this.handshakes.add(pending);
      socket.once('close', () => this.handshakes.delete(pending));
      (socket as Socket & { pendingHandshake?: PendingHandshake }).pendingHandshake = pending;
      this.tls.emit('connection', socket);
    } else {
      this.h1.accept(socket, 'http', this.keyFor(socket));
    }
    socket.resume();
  }

  /**
   * rateLimit.maxConnectionsPerClient: a client over its limit is refused by closing the socket at once,
   * before TLS or HTTP cost anything. Its place is given back when the socket closes, on this thread. The
   * admin port is never limited (an operator must reach a flooded quiclb).
   */
  private admit(socket: Socket, kind: TcpKind): boolean {
    if (kind === 'admin') return true;
    const verdict = this.opts.limiter.acquireConnection(socket.remoteAddress ?? '');
    if (verdict.ok) {
      if (verdict.lease.counted) socket.once('close', () => verdict.lease.release());
      return true;
    }
    if (verdict.log) {
      this.opts.logger.warn(
        { client: verdict.client, reason: verdict.reason, limit: verdict.limit },
        'client over rateLimit.maxConnectionsPerClient: connections refused; not logged again for rateLimit.logInterval',
      );
    }
    socket.on('error', () => undefined);
    socket.destroy();
    return false;
  }

  private onSecure(socket: tls.TLSSocket): void {
    const raw = (socket as unknown as { _parent?: Socket })._parent;
    const pending = raw ? (raw as Socket & { pendingHandshake?: PendingHandshake }).pendingHandshake : undefined;
    if (pending) this.handshakes.delete(pending);
    socket.on('error', () => undefined);
    const key = this.keyFor(raw ?? socket);
    this.connectionKeys.set(socket, key);
    if (socket.alpnProtocol === 'h2') this.h2.accept(socket);
    else this.h1.accept(socket, 'https', key);
  }

  connectionCount(): number {
    return this.sockets.size;
  }

  /** Stop new requests: HTTP/2 GOAWAY, HTTP/1.1 keep-alive ends after the current response. */
  drain(): void {
    this.h1.drain();
    this.h2.drain(); // GOAWAY, then close once the open streams are done

  }

  /** Force-close whatever is still open after the drain timeout. */
  destroyAll(): void {
    this.h1.destroyAll();
    this.h2.destroyAll();
    for (const socket of this.sockets) socket.destroy();
    this.handshakes.stop();
  }
}
