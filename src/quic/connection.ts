// One QUIC connection inside a shard: the quiche connection plus what the endpoint tracks around it
// (its CIDs in the routing map, the current peer address, its slot in the shard's timer heap, and the
// application on top, HTTP/3).
import type { HostPort, QuicheConnection } from './quiche.ts';
import type { HeapEntry } from './timer-heap.ts';

/** What runs on top of a connection (src/quic/h3-frontend.ts). */
export interface QuicApp {
  /** After packets arrived, a timer fired or the app asked to be woken: read streams, continue writes. */
  service(): void;
  /** Periodic check (QuicEndpoint's sweep timer): timeouts and anything else that needs the clock. */
  sweep(now: number): void;
  /** Graceful shutdown: stop taking new requests (HTTP/3 GOAWAY, RFC 9114 §5.2). */
  goaway(): void;
  /** The connection is gone: abort whatever is still open. */
  closed(): void;
  /** Requests whose response has not finished (a draining shard closes connections at 0). */
  inFlight(): number;
  /** Sizes of every per-stream table this connection keeps (tests check that nothing is left behind). */
  stateCounts(): Record<string, number>;
}

export class QuicConn implements HeapEntry {
  deadline = 0;
  heapIndex = -1;
  readonly conn: QuicheConnection;
  /** Hex of the first server CID: stable across migration (FrontRequest.connectionKey). */
  readonly key: string;
  /** Keys (hex CIDs) under which the endpoint's map holds this connection. */
  readonly cids = new Set<string>();
  peer: HostPort;
  /** DCID (hex) of the latest packet from `peer`, and of the latest one from any other address. */
  peerDcid = '';
  otherDcid = '';
  /**
   * Peer addresses the client migrated away from (at most MAX_OLD_PATHS, newest last): quiche keeps their
   * paths, and their loss recovery, after PeerMigrated (see QuicEndpoint.drainOldPaths).
   */
  oldPeers: HostPort[] = [];
  readonly local: HostPort;
  established = false;
  app: QuicApp | undefined;
  gone = false;

  constructor(conn: QuicheConnection, key: string, local: HostPort, peer: HostPort) {
    this.conn = conn;
    this.key = key;
    this.local = local;
    this.peer = peer;
  }
}
