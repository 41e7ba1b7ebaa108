// The HTTP/1.1 frontend of one shard: plain sockets from the HTTP port and TLS sockets that negotiated
// http/1.1 (or no ALPN) on the HTTPS port. Each becomes an H1Connection; one sweeper enforces their timeouts.
import type { Socket } from 'node:net';
import type { FrontendLimits } from '../../config/limits.ts';
import type { RequestHandler } from '../../shared/http-types.ts';
import type { Logger } from '../../shared/logger.ts';
import { DeadlineSweeper } from '../deadline-sweeper.ts';
import { H1Connection } from './connection.ts';

export interface H1FrontendOptions {
  limits: FrontendLimits;
  shard: number;
  onRequest: RequestHandler;
  logger: Logger;
}

export class H1Frontend {
  private readonly opts: H1FrontendOptions;
  private readonly sweeper: DeadlineSweeper<H1Connection>;
  private draining = false;
  private readonly isDraining = (): boolean => this.draining;

  constructor(opts: H1FrontendOptions) {
    this.opts = opts;
    const l = opts.limits;
    this.sweeper = new DeadlineSweeper(Math.min(l.readTimeoutMs, l.writeTimeoutMs, l.idleTimeoutMs));
  }

  accept(socket: Socket, scheme: 'http' | 'https', connectionKey: string): void {
    const conn = new H1Connection(
      socket,
      {
        limits: this.opts.limits,
        scheme,
        shard: this.opts.shard,
        connectionKey,
        onRequest: this.opts.onRequest,
        logger: this.opts.logger,
        draining: this.isDraining,
      },
      Date.now(),
    );
    this.sweeper.add(conn);
    socket.once('close', () => this.sweeper.delete(conn));
    if (this.draining) conn.drain();
  }

  connectionCount(): number {
    return this.sweeper.size;
  }

  /** No keep-alive after the responses in flight; idle connections close now. */
  drain(): void {
    this.draining = true;
    for (const conn of this.sweeper.values()) conn.drain();
  }

  destroyAll(): void {
    for (const conn of this.sweeper.values()) conn.destroy();
    this.sweeper.stop();
  }
}
