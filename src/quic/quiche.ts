// The quiche napi binding (@matrixai/quic-linux-x64 2.0.9, quiche 0.18), typed for the parts quiclb uses.
// The package ships no typings; these follow its napi-rs source and what docs/quiche.md records
// (e.g. pathEventNext() returns null when empty, ReusedSourceConnectionId.seq is a BigInt).
// Only the sans-IO native layer is used: sockets belong to the primary (src/primary/udp-router.ts).
import { createRequire } from 'node:module';
import { prepareQuicheBinding, type PreparedBinding } from './quiche-binding-file.ts';

export interface HostPort {
  /** IP literal only (no host names). */
  host: string;
  port: number;
}

export interface RecvInfo {
  from: HostPort;
  to: HostPort;
}

export interface SendInfo {
  from: HostPort;
  to: HostPort;
  at: unknown;
}

export type PathEvent =
  | { type: 'New'; local: HostPort; peer: HostPort }
  | { type: 'Validated'; local: HostPort; peer: HostPort }
  | { type: 'FailedValidation'; local: HostPort; peer: HostPort }
  | { type: 'Closed'; local: HostPort; peer: HostPort }
  | { type: 'ReusedSourceConnectionId'; seq: bigint; old: [HostPort, HostPort]; new: [HostPort, HostPort] }
  // Measured: `old` holds the local address and `new` the new peer address (docs/quiche.md).
  | { type: 'PeerMigrated'; old: HostPort; new: HostPort };

export interface ConnectionError {
  isApp: boolean;
  errorCode: number;
  reason: Uint8Array;
}

export interface QuicheConfig {
  loadCertChainFromPemFile(file: string): void;
  loadPrivKeyFromPemFile(file: string): void;
  verifyPeer(verify: boolean): void;
  grease(grease: boolean): void;
  setApplicationProtos(protos: string[]): void;
  setMaxIdleTimeout(ms: number): void;
  setMaxRecvUdpPayloadSize(size: number): void;
  setMaxSendUdpPayloadSize(size: number): void;
  setInitialMaxData(v: number): void;
  setInitialMaxStreamDataBidiLocal(v: number): void;
  setInitialMaxStreamDataBidiRemote(v: number): void;
  setInitialMaxStreamDataUni(v: number): void;
  setInitialMaxStreamsBidi(v: number): void;
  setInitialMaxStreamsUni(v: number): void;
  setActiveConnectionIdLimit(v: number): void;
  setDisableActiveMigration(v: boolean): void;
  setMaxConnectionWindow(v: number): void;
  setMaxStreamWindow(v: number): void;
  enableEarlyData(): void;
  enablePacing(v: boolean): void;
  setTicketKey(key: Uint8Array): void;
  /** RFC 9000 §18.2 stateless_reset_token of the connections accept()ed after it (u128, token octets big endian). */
  setStatelessResetToken(token: bigint | null): void;
}

export interface StreamIter {
  [Symbol.iterator](): Iterator<number>;
}

export interface QuicheConnection {
  recv(data: Uint8Array, info: RecvInfo): number;
  send(out: Uint8Array): [number, SendInfo] | null;
  sendOnPath(out: Uint8Array, from: HostPort | null, to: HostPort | null): [number, SendInfo] | null;
  streamRecv(streamId: number, out: Uint8Array): [number, boolean] | null;
  streamSend(streamId: number, data: Uint8Array, fin: boolean): number | null;
  streamShutdown(streamId: number, direction: number, err: number): void;
  streamCapacity(streamId: number): number;
  streamReadable(streamId: number): boolean;
  streamWritable(streamId: number, len: number): boolean;
  streamFinished(streamId: number): boolean;
  readable(): StreamIter;
  writable(): StreamIter;
  timeout(): number | null;
  onTimeout(): void;
  newSourceCid(scid: Uint8Array, resetToken: bigint, retireIfNeeded: boolean): number;
  sourceCidsLeft(): number;
  activeSourceCids(): number;
  pathEventNext(): PathEvent | null;
  retiredScidNext(): Uint8Array | null;
  close(app: boolean, err: number, reason: Uint8Array): void;
  traceId(): string;
  sourceId(): Uint8Array;
  destinationId(): Uint8Array;
  isEstablished(): boolean;
  isReadable(): boolean;
  isDraining(): boolean;
  isClosed(): boolean;
  isTimedOut(): boolean;
  peerError(): ConnectionError | null;
  localError(): ConnectionError | null;
  applicationProto(): Uint8Array;
  /** The peer's certificate chain (DER, leaf first) once the handshake has it; null otherwise. */
  peerCertChain(): Uint8Array[] | null;
  /** True when the handshake resumed a session (a ticket of the same ticket key). */
  isResumed(): boolean;
  /** Client side: the serialized session once a ticket arrived, and the one to resume before connecting. */
  session(): Uint8Array | null;
  setSession(session: Uint8Array): void;
}

export interface QuicheHeader {
  readonly ty: number;
  readonly version: number;
  readonly dcid: Uint8Array;
  readonly scid: Uint8Array;
  readonly token?: Uint8Array | null;
}

export interface QuicheBinding {
  MAX_CONN_ID_LEN: number;
  MIN_CLIENT_INITIAL_LEN: number;
  PROTOCOL_VERSION: number;
  Type: { Initial: number; Retry: number; Handshake: number; ZeroRTT: number; VersionNegotiation: number; Short: number };
  Shutdown: { Read: number; Write: number };
  negotiateVersion(scid: Uint8Array, dcid: Uint8Array, out: Uint8Array): number;
  retry(scid: Uint8Array, dcid: Uint8Array, newScid: Uint8Array, token: Uint8Array, version: number, out: Uint8Array): number;
  versionIsSupported(version: number): boolean;
  Config: new () => QuicheConfig;
  Connection: {
    accept(scid: Uint8Array, odcid: Uint8Array | null, local: HostPort, peer: HostPort, config: QuicheConfig): QuicheConnection;
    connect(serverName: string | null, scid: Uint8Array, local: HostPort, peer: HostPort, config: QuicheConfig): QuicheConnection;
  };
  Header: { fromSlice(data: Uint8Array, dcidLen: number): QuicheHeader };
}

let binding: QuicheBinding | undefined;
let prepared: PreparedBinding | undefined;

/**
 * The binding file this thread loads or would load: the thread-safe copy when it can be had (see
 * quiche-binding-file.ts), else the installed original, which only the first thread of a process may use.
 */
export function quicheBindingFile(): PreparedBinding {
  prepared ??= prepareQuicheBinding();
  return prepared;
}

/** Loads the binding on first use (each thread gets its own instance: it is context-aware). */
export function loadQuiche(): QuicheBinding {
  binding ??= createRequire(import.meta.url)(quicheBindingFile().path) as QuicheBinding;
  return binding;
}

export const SHUTDOWN_READ = 0;
export const SHUTDOWN_WRITE = 1;

