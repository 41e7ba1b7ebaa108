// The primary's TCP listening sockets. Each accepted socket is paused (pauseOnConnect, so no byte is
// read here) and transferred to the least-loaded shard, which runs TLS and HTTP on it (Node >= 24.21
// moves a net.Socket between threads with postMessage(value, [socket])).
import net from 'node:net';
import type { TransferListItem } from 'node:worker_threads';
import type { Logger } from '../shared/logger.ts';
import type { ShardSupervisor } from './shard-supervisor.ts';
import { formatHostPort, isIpv6Any } from './bind-plan.ts';

export type ListenerKind = 'http' | 'https' | 'admin';

export interface ListenSpec {
  kind: ListenerKind;
  host: string;
  port: number;
  /** For "::": false = dual stack (IPv4 clients as ::ffff:a.b.c.d), see bind-plan.ts. */
  ipv6Only?: boolean;
}

export class TcpListeners {
  private readonly servers: net.Server[] = [];
  private readonly shards: ShardSupervisor;
  private readonly logger: Logger;
  /** Connections refused because no shard was alive (counted, logged once a second at most). */
  refused = 0;

  constructor(shards: ShardSupervisor, logger: Logger) {
    this.shards = shards;
    this.logger = logger;
  }

  async listen(specs: ListenSpec[]): Promise<void> {
    for (const spec of specs) {
      const server = net.createServer({ pauseOnConnect: true, noDelay: true }, (socket) => this.dispatch(socket, spec.kind));
      server.on('error', (err) => this.logger.error({ err, port: spec.port }, 'listener error'));
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen({ host: spec.host, port: spec.port, backlog: 4096, ipv6Only: spec.ipv6Only ?? false }, () => {
          server.off('error', reject);
          resolve();
        });
      });
      this.servers.push(server);
      this.logger.info({ kind: spec.kind, address: formatHostPort(spec.host, spec.port), dualStack: isIpv6Any(spec.host) && !spec.ipv6Only }, 'listening (tcp)');
    }
  }

  private dispatch(socket: net.Socket, kind: ListenerKind): void {
    const shard = this.shards.leastLoaded();
    if (shard < 0) {
      this.refused++;
      socket.destroy();
      return;
    }
    try {
      if (!this.shards.post(shard, { type: 'tcp:conn', kind, socket }, [socket as unknown as TransferListItem])) socket.destroy();
    } catch (err) {
      this.logger.warn({ err, shard }, 'socket transfer failed');
      socket.destroy();
    }
  }

  /** Stops accepting. Accepted sockets already live in the shards, which drain them. */
  close(): void {
    for (const server of this.servers) server.close();
  }
}
