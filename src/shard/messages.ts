// Messages between the primary and a shard (besides the QUIC ones, which src/quic defines).
import type { Config } from '../config/types.ts';

export interface ShardInit {
  shard: number;
  workers: number;
  /** Shards 0..quicShards-1 run QUIC (src/primary/primary.ts quicShardCount). */
  quicShards: number;
  config: Config;
  stateBuffer: SharedArrayBuffer;
  sessionBuffer: SharedArrayBuffer;
  certFile: string;
  keyFile: string;
  /** Key of the QUIC stateless reset tokens (src/wire/stateless-reset.ts), shared with the primary. */
  resetKey: Uint8Array;
  /** Session ticket keys (48 octets each) of the TLS (TCP) and quiche (QUIC) contexts, from the key ring. */
  tlsTicketKeys: Uint8Array;
  quicTicketKey: Uint8Array;
  startedAt: number;
}

export type PrimaryToShard =
  | { type: 'tcp:conn'; socket: unknown; kind: 'http' | 'https' | 'admin' }
  | { type: 'admin:snapshot'; id: number }
  | { type: 'admin:collected'; id: number; snapshots: string[][] }
  | { type: 'shutdown'; timeoutMs: number };

export type ShardToPrimary =
  | { type: 'ready' }
  | { type: 'drained' }
  | { type: 'admin:collect'; id: number }
  | { type: 'admin:snapshot'; id: number; snapshot: string[] };
