// The HTTP/2 frontend of one shard: TLS connections that negotiated ALPN "h2" (RFC 9113 §3.2) become
// node:http2 server sessions, and each request stream a FrontRequest/FrontResponse for the pipeline.
//
// Sessions are made with http2.performServerHandshake on the accepted TLSSocket rather than by emitting
// 'connection' on an http2.createServer. Both build the same ServerHttp2Session from the same options
// (node's initializeOptions) and serve streams the same way (core API 'stream' events; no compat req/res,
// which a server sets up only once a 'request' listener is added). The server route adds only glue around
// the session: an ALPN re-check we already did, a listener that re-emits every stream on the server (one
// more emit per request), session errors re-emitted as 'sessionError', and a server-wide 'timeout' that
// would duplicate our idle timer. performServerHandshake (Node >= 20.12; quiclb runs on 24.21) gives the
// session alone; its errors, timeouts and closing are all handled here. (Reasoned from node's
// lib/internal/http2/core.js, not measured: the per-request difference is one emit.)
import type { TLSSocket } from 'node:tls';
import type { FrontendLimits } from '../../config/limits.ts';
import type { RequestHandler } from '../../shared/http-types.ts';
import type { Logger } from '../../shared/logger.ts';
import { H2Connection } from './connection.ts';
import type { ConnectionContext } from './connection.ts';
import { LocalClientResetBudget } from './reset-budget.ts';
import type { ClientResetBudget } from './reset-budget.ts';
import { sessionOptions } from './session-options.ts';

/**
 * Client resets one address may make per resetWindowMs, over all its connections, before each of its
 * connections that resets a stream is closed at once. Several times the per-connection budget: many users
 * can share one address (NAT), and browsers cancel requests when a page is left.
 */
export const CLIENT_RESET_FACTOR = 5;

export interface H2FrontendOptions {
  limits: FrontendLimits;
  shard: number;
  onRequest: RequestHandler;
  logger: Logger;
  /** Stable key of the client connection (FrontRequest.connectionKey). */
  connectionKey(socket: TLSSocket): string;
  /** Per-address reset accounting; default: this shard's own table (CLIENT_RESET_FACTOR × the connection budget). */
  clientResets?: ClientResetBudget;
}

export class H2Frontend {
  private readonly connections = new Set<H2Connection>();
  private readonly ctx: ConnectionContext;
  private readonly opts: H2FrontendOptions;
  private draining = false;

  constructor(opts: H2FrontendOptions) {
    this.opts = opts;
    const { limits } = opts;
    this.ctx = {
      limits,
      sessionOptions: sessionOptions(limits),
      shard: opts.shard,
      onRequest: opts.onRequest,
      logger: opts.logger,
      clientResets:
        opts.clientResets ?? new LocalClientResetBudget({ maxResets: CLIENT_RESET_FACTOR * limits.maxResetsPerWindow, windowMs: limits.resetWindowMs }),
      onClosed: (conn) => this.connections.delete(conn),
    };
  }

  /** A TLS connection whose handshake is done and whose ALPN is h2. */
  accept(socket: TLSSocket): void {
    try {
      const conn = new H2Connection(socket, this.ctx, this.opts.connectionKey(socket));
      this.connections.add(conn);
      if (this.draining) conn.close();
    } catch (err) {
      this.opts.logger.warn({ err }, 'HTTP/2 session setup failed; connection closed');
      socket.destroy();
    }
  }

  /** GOAWAY on every session; each closes once its open streams end. New sessions get GOAWAY at once. */
  drain(): void {
    this.draining = true;
    for (const conn of this.connections) conn.close();
  }

  /** Closes every session now, cancelling open streams. */
  destroyAll(): void {
    for (const conn of this.connections) conn.destroy();
  }

  sessionCount(): number {
    return this.connections.size;
  }
}
