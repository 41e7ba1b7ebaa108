// The primary's half of QUIC: it owns the UDP socket(s) on httpsPort, reads only the invariant header
// (never decrypts), and routes each datagram to the shard that owns its connection:
//   short header  -> the shard octet of the DCID (src/wire/cid.ts), no lookup;
//   long header   -> the client-chosen-CID table, else the DCID's shard octet, else (Initial) a new
//                    connection for the least-loaded alive shard, or a stateless Retry under a flood.
// Version negotiation, too-short Initials, unknown CIDs, bad tokens and unparsable headers are handled
// (and counted) here so that garbage costs the shards nothing. Datagrams travel to and from the shards in
// batches (src/wire/datagram-batch.ts) flushed at the end of each socket read burst.
import dgram from 'node:dgram';
import type { TransferListItem as Transferable } from 'node:worker_threads';
import type { Logger } from 'pino';
import type { Config } from '../config/types.ts';
import {
  SharedState,
  S_CONNECTIONS,
  G_DROP_BAD_HEADER,
  G_DROP_BAD_TOKEN,
  G_DROP_INITIAL_TOO_SHORT,
  G_DROP_QUEUE_FULL,
  G_DROP_SHORT_UNKNOWN_CID,
  G_QUIC_RETRIES,
  G_QUIC_RESETS_RATE_LIMITED,
  G_QUIC_STATELESS_RESETS,
  G_VERSION_NEGOTIATIONS,
} from '../shared/state.ts';
import { encodeCid, decodeCidShard } from '../wire/cid.ts';
import { parseHeader, newParsedHeader, LONG_INITIAL, type ParsedHeader } from '../wire/packet-header.ts';
import { DatagramBatchWriter, readBatch, FLAG_NEW_CONNECTION, FLAG_STATELESS_RESET } from '../wire/datagram-batch.ts';
import { ResetTokens, ResetRateLimit, buildStatelessReset, statelessResetSize, PRIMARY_RESET_RATE, PRIMARY_RESET_BURST } from '../wire/stateless-reset.ts';
import { isSupportedVersion, retryPacket, versionNegotiation } from '../wire/udp-stateless.ts';
import { CidTable } from './cid-table.ts';
import { checkUdpBuffers } from '../shared/udp-buffers.ts';
import { normalizeIp } from '../shared/ip.ts';
import { bindAddressList, formatHostPort, planBinds, type BindSpec } from './bind-plan.ts';
import { RetryTokenMinter } from './udp-retry-token.ts';
import { RetryCache, HandshakeRate } from './udp-retry-policy.ts';
import type { QuicInMessage, QuicOutMessage } from '../quic/messages.ts';

interface BoundSocket {
  socket: dgram.Socket;
  host: string;
  family: 4 | 6;
  ipv6Only: boolean;
}

export interface ShardPort {
  index: number;
  alive(): boolean;
  post(msg: QuicInMessage, transfer?: Transferable[]): void;
}

/** RFC 9000 §14.1: a server MUST discard an Initial in a datagram smaller than 1200 octets. */
const MIN_INITIAL_DATAGRAM = 1200;
/** Datagrams posted to a shard and not yet acknowledged; above this they are dropped and counted. */
const MAX_PENDING_PER_SHARD = 8192;
/** Datagrams per batch before an early flush (the rest waits for the end of the read burst). */
const MAX_BATCH_DATAGRAMS = 64;
/** Datagrams queued in a socket's send queue before outgoing datagrams are dropped and counted. */
const MAX_SEND_QUEUE = 4096;
/** Client address -> socket entries kept when several sockets serve one family. */
const MAX_PEER_SOCKETS = 65_536;

export interface UdpRouterOptions {
  config: Config;
  state: SharedState;
  logger: Logger;
  shards: ShardPort[];
  /** Shards with an index below this run QUIC; the router sends datagrams to no other shard. */
  quicShards: number;
  /**
   * Key of the stateless reset tokens, the one the shards derive their CIDs' tokens with, or the key ring's
   * reset keys newest first.
   */
  resetKey: Uint8Array | readonly Uint8Array[];
  /** Retry token keys from the key ring, newest first (random when absent: tokens die with the process). */
  retryKeys?: readonly Buffer[];
  /** Sockets to bind (src/primary/bind-plan.ts); planBinds(server.bindAddress) without the IPv6 probe when absent. */
  binds?: readonly BindSpec[];
  /** Stateless resets per second and burst; PRIMARY_RESET_RATE / PRIMARY_RESET_BURST when absent. */
  resetRate?: { perSecond: number; burst: number };
}

export class UdpRouter {
  private readonly config: Config;
  private readonly state: SharedState;
  private readonly logger: Logger;
  private readonly shards: ShardPort[];
  /** shards by index, for the per-datagram liveness check. */
  private readonly byIndex: Array<ShardPort | undefined>;
  private readonly table = new CidTable();
  private tokens: RetryTokenMinter;
  private readonly retryCache = new RetryCache();
  private resetTokens: ResetTokens;
  private readonly resetLimit: ResetRateLimit;
  private readonly rate: HandshakeRate;
  private readonly batches: DatagramBatchWriter[];
  private readonly pending: number[];
  private readonly newInFlight: number[];
  private readonly hdr: ParsedHeader = newParsedHeader();
  private readonly binds: readonly BindSpec[];
  private sockets: BoundSocket[] = [];
  /** Where datagrams to an IPv4 / IPv6 client go when no peer entry says otherwise. */
  private out4: BoundSocket | undefined;
  private out6: BoundSocket | undefined;
  /**
   * Only when several sockets serve one family (a list of specific addresses): the socket each client last
   * used, so answers leave from the address it talks to. Bounded; the oldest entry goes first.
   */
  private peerSockets: Map<string, BoundSocket> | undefined;
  private localPort = 0;
  private flushQueued = false;
  private sweepTimer: NodeJS.Timeout | undefined;
  private pickCursor = 0;

  constructor(opts: UdpRouterOptions) {
    this.config = opts.config;
    this.state = opts.state;
    this.logger = opts.logger.child({ component: 'udp-router' });
    this.rate = new HandshakeRate(opts.config.quic.retryThreshold);
    this.resetTokens = new ResetTokens(opts.resetKey);
    this.binds = opts.binds ?? planBinds(bindAddressList(opts.config.server));
    this.tokens = new RetryTokenMinter({ keys: opts.retryKeys });
    this.resetLimit = new ResetRateLimit(opts.resetRate?.perSecond ?? PRIMARY_RESET_RATE, opts.resetRate?.burst ?? PRIMARY_RESET_BURST);
    // Shards 0..quicShards-1 run QUIC (all of them unless the quiche binding is the original, see primary.ts).
    const quicShards = opts.shards.filter((s) => s.index < opts.quicShards);
    this.shards = quicShards;
    const n = Math.max(...quicShards.map((s) => s.index + 1), 0);
    this.byIndex = new Array<ShardPort | undefined>(n).fill(undefined);
    for (const s of quicShards) this.byIndex[s.index] = s;
    this.batches = Array.from({ length: n }, () => new DatagramBatchWriter());
    this.pending = new Array<number>(n).fill(0);
    this.newInFlight = new Array<number>(n).fill(0);
  }

  /** The bound address of the first socket; port is the real one when httpsPort was 0. */
  address(): { address: string; port: number } {
    const s = this.sockets[0]?.socket;
    if (!s) throw new Error('UdpRouter.address() before listen()');
    const a = s.address();
    return { address: a.address, port: a.port };
  }

  async listen(): Promise<void> {
    const { httpsPort } = this.config.server;
    for (const spec of this.binds) {
      // httpsPort 0 (tests): the kernel picks the first socket's port, and every other socket takes the same.
      const socket = await this.bind(spec, httpsPort || this.localPort);
      this.localPort = socket.socket.address().port;
      this.sockets.push(socket);
    }
    // A dual-stack socket also serves IPv4 clients (as ::ffff:a.b.c.d on the wire).
    const serves4 = this.sockets.filter((b) => b.family === 4 || !b.ipv6Only);
    const serves6 = this.sockets.filter((b) => b.family === 6);
    this.out4 = serves4[0];
    this.out6 = serves6[0];
    if (serves4.length > 1 || serves6.length > 1) this.peerSockets = new Map();
    this.sweepTimer = setInterval(() => {
      const now = performance.now();
      this.table.sweep(now);
      this.retryCache.sweep(now);
    }, 1000);
    this.sweepTimer.unref();
    this.logger.info(
      { addresses: this.sockets.map((b) => `${formatHostPort(b.host, this.localPort)}${b.family === 6 && !b.ipv6Only ? ' (dual stack)' : ''}`) },
      'QUIC listening',
    );
  }

  private bind(spec: BindSpec, port: number): Promise<BoundSocket> {
    return new Promise((resolve, reject) => {
      const socket = dgram.createSocket({ type: spec.family === 6 ? 'udp6' : 'udp4', ipv6Only: spec.ipv6Only, reuseAddr: false });
      const onError = (err: Error): void => {
        socket.close();
        reject(err);
      };
      socket.once('error', onError);
      socket.bind(port, spec.host, () => {
        socket.off('error', onError);
        socket.on('error', (err) => this.logger.warn({ err }, 'UDP socket error'));
        this.tuneBuffers(socket);
        const bound: BoundSocket = { socket, host: spec.host, family: spec.family, ipv6Only: spec.ipv6Only };
        socket.on('message', (msg, rinfo) => {
          // Every part of quiclb sees an IPv4 client as IPv4, also through the dual-stack socket (src/shared/ip.ts);
          // sendRaw maps it back for that socket.
          const address = normalizeIp(rinfo.address);
          if (this.peerSockets) this.rememberPeer(address, rinfo.port, bound);
          this.route(msg, address, rinfo.port);
        });
        resolve(bound);
      });
    });
  }

  private rememberPeer(address: string, port: number, bound: BoundSocket): void {
    const map = this.peerSockets!;
    const key = `${address}|${port}`;
    if (map.get(key) === bound) return;
    map.delete(key);
    if (map.size >= MAX_PEER_SOCKETS) {
      const oldest = map.keys().next().value;
      if (oldest !== undefined) map.delete(oldest);
    }
    map.set(key, bound);
  }

  private tuneBuffers(socket: dgram.Socket): void {
    const want = this.config.quic.udpBufferSize;
    if (!want) return;
    // Linux doubles the request for bookkeeping and caps it at net.core.{r,w}mem_max; checkUdpBuffers
    // undoes the doubling so the comparison is honest (the same check as `quiclb doctor`).
    const r = checkUdpBuffers(socket, want);
    if (!r.ok) this.logger.warn({ wantBytes: want, rcv: r.rcv, snd: r.snd }, r.message ?? 'UDP buffers smaller than quic.udpBufferSize; see tuning/sysctl.sh');
  }

  // ---- the per-datagram path -------------------------------------------------------------------

  /** Routes one datagram. Public for tests that feed datagrams without a socket. */
  route(msg: Buffer, address: string, port: number): void {
    const len = msg.length;
    const h = this.hdr;
    if (!parseHeader(msg, len, h)) {
      this.state.addGlobal(G_DROP_BAD_HEADER);
      return;
    }
    if (!h.long) {
      const shard = decodeCidShard(msg, h.dcidOff, h.dcidLen);
      if (!this.isAlive(shard)) {
        // Its shard is dead (or it is no CID of ours): nobody will ever answer it, so say so (RFC 9000 §10.3).
        this.state.addGlobal(G_DROP_SHORT_UNKNOWN_CID);
        this.statelessReset(msg, len, address, port);
        return;
      }
      this.enqueue(shard, msg, address, port, 0, null);
      return;
    }
    if (h.version === 0) {
      // A Version Negotiation packet sent to a server is never valid (RFC 9000 §6.1).
      this.state.addGlobal(G_DROP_BAD_HEADER);
      return;
    }
    if (!isSupportedVersion(h.version)) {
      this.negotiateVersion(msg, len, address, port);
      return;
    }
    const now = performance.now();
    const key = msg.toString('latin1', h.dcidOff, h.dcidOff + h.dcidLen);
    let shard = this.table.lookup(key, now);
    if (shard >= 0 && this.isAlive(shard)) {
      this.enqueue(shard, msg, address, port, 0, null);
      return;
    }
    if (h.type === LONG_INITIAL) {
      this.routeInitial(msg, len, address, port, key, now);
      return;
    }
    // Handshake / 0-RTT: must carry one of our CIDs (0-RTT with a client CID hit the table above).
    shard = decodeCidShard(msg, h.dcidOff, h.dcidLen);
    if (!this.isAlive(shard)) {
      this.state.addGlobal(G_DROP_SHORT_UNKNOWN_CID);
      return;
    }
    this.enqueue(shard, msg, address, port, 0, null);
  }

  private routeInitial(msg: Buffer, len: number, address: string, port: number, key: string, now: number): void {
    const h = this.hdr;
    if (len < MIN_INITIAL_DATAGRAM) {
      this.state.addGlobal(G_DROP_INITIAL_TOO_SHORT);
      return;
    }
    if (h.tokenLen > 0) {
      this.routeTokenInitial(msg, address, port, key, now);
      return;
    }
    // Later Initials of a connection (ACKs of the server's Initial) carry the server's CID.
    const owner = decodeCidShard(msg, h.dcidOff, h.dcidLen);
    if (this.isAlive(owner)) {
      this.enqueue(owner, msg, address, port, 0, null);
      return;
    }
    if (this.rate.shouldRetry(now)) {
      this.sendRetry(msg, address, port, now);
      return;
    }
    this.startConnection(msg, address, port, key, now);
  }

  private routeTokenInitial(msg: Buffer, address: string, port: number, key: string, now: number): void {
    const h = this.hdr;
    const token = msg.subarray(h.tokenOff, h.tokenOff + h.tokenLen);
    const dcid = msg.subarray(h.dcidOff, h.dcidOff + h.dcidLen);
    const check = this.tokens.validate(token, address, dcid);
    if (!check.ok) {
      this.state.addGlobal(G_DROP_BAD_TOKEN);
      return;
    }
    // The Retry's source CID (now this DCID) was minted for a shard: quiche will keep it as the
    // connection's CID, so the connection must live on the shard it names.
    const shard = decodeCidShard(msg, h.dcidOff, h.dcidLen);
    if (!this.isAlive(shard)) {
      this.state.addGlobal(G_DROP_SHORT_UNKNOWN_CID);
      return;
    }
    this.rate.count(now);
    this.table.insert(key, shard, now);
    this.newInFlight[shard]++;
    this.enqueue(shard, msg, address, port, FLAG_NEW_CONNECTION, check.odcid);
  }

  private startConnection(msg: Buffer, address: string, port: number, key: string, now: number): void {
    const shard = this.pickShard();
    if (shard < 0) {
      this.state.addGlobal(G_DROP_QUEUE_FULL);
      return;
    }
    this.rate.count(now);
    this.table.insert(key, shard, now);
    this.newInFlight[shard]++;
    this.enqueue(shard, msg, address, port, FLAG_NEW_CONNECTION, null);
  }

  /** The alive shard with the fewest connections (TCP + QUIC), counting ones not yet seen by the shard. */
  private pickShard(): number {
    const n = this.shards.length;
    let best = -1;
    let bestLoad = Infinity;
    for (let k = 0; k < n; k++) {
      const s = this.shards[(this.pickCursor + k) % n];
      if (!s.alive()) continue;
      const load = this.state.shardGauge(s.index, S_CONNECTIONS) + this.newInFlight[s.index];
      if (load < bestLoad) {
        best = s.index;
        bestLoad = load;
      }
    }
    // Rotating the start spreads ties (e.g. short sequential connections) across shards.
    this.pickCursor = (this.pickCursor + 1) % Math.max(n, 1);
    return best;
  }

  private isAlive(shard: number): boolean {
    if (shard < 0 || shard >= this.batches.length) return false;
    const s = this.byIndex[shard];
    return s !== undefined && s.alive();
  }

  private enqueue(shard: number, msg: Buffer, address: string, port: number, flags: number, odcid: Buffer | null): void {
    const batch = this.batches[shard];
    if (this.pending[shard] + batch.count >= MAX_PENDING_PER_SHARD) {
      if (flags & FLAG_NEW_CONNECTION) this.newInFlight[shard]--;
      this.state.addGlobal(G_DROP_QUEUE_FULL);
      return;
    }
    if (!batch.fits(msg.length)) this.flushShard(shard);
    batch.append(msg, msg.length, address, port, flags, odcid);
    if (batch.count >= MAX_BATCH_DATAGRAMS) this.flushShard(shard);
    else if (!this.flushQueued) {
      this.flushQueued = true;
      // setImmediate runs after the poll phase: every datagram read in this burst is in the batch.
      setImmediate(() => this.flushAll());
    }
  }

  private flushAll(): void {
    this.flushQueued = false;
    for (let i = 0; i < this.batches.length; i++) this.flushShard(i);
  }

  private flushShard(shard: number): void {
    const m = this.batches[shard].take();
    if (m === null) return;
    const port = this.byIndex[shard];
    if (!port || !port.alive()) return;
    this.pending[shard] += m.n;
    port.post({ type: 'quic:in', buf: m.buf, len: m.len, n: m.n, lport: this.localPort }, [m.buf]);
  }

  // ---- stateless answers -----------------------------------------------------------------------

  private negotiateVersion(msg: Buffer, len: number, address: string, port: number): void {
    const h = this.hdr;
    // RFC 9000 §5.2.2 / §6: answer only datagrams big enough to be a first Initial (limits amplification).
    if (len < MIN_INITIAL_DATAGRAM) {
      this.state.addGlobal(G_DROP_INITIAL_TOO_SHORT);
      return;
    }
    const packet = versionNegotiation(msg.subarray(h.dcidOff, h.dcidOff + h.dcidLen), msg.subarray(h.scidOff, h.scidOff + h.scidLen));
    this.state.addGlobal(G_VERSION_NEGOTIATIONS);
    this.sendRaw(packet, address, port);
  }

  private sendRetry(msg: Buffer, address: string, port: number, now: number): void {
    const h = this.hdr;
    const scid = msg.subarray(h.scidOff, h.scidOff + h.scidLen);
    const odcid = msg.subarray(h.dcidOff, h.dcidOff + h.dcidLen);
    // Chromium splits its ClientHello over two Initials: both must get the same Retry, or the second
    // one's Retry (ignored by the client, RFC 9000 §17.2.5.2) would name a different shard and token.
    const cacheKey = `${address}|${port}|${msg.toString('latin1', h.dcidOff, h.dcidOff + h.dcidLen)}`;
    let packet = this.retryCache.get(cacheKey, now);
    if (packet === undefined) {
      const shard = this.pickShard();
      if (shard < 0) {
        this.state.addGlobal(G_DROP_QUEUE_FULL);
        return;
      }
      const retryScid = encodeCid(shard, this.resetTokens.tag);
      const token = this.tokens.mint(address, odcid, retryScid);
      packet = retryPacket(scid, odcid, retryScid, token, h.version);
      this.retryCache.set(cacheKey, packet, now);
    }
    this.state.addGlobal(G_QUIC_RETRIES);
    this.sendRaw(packet, address, port);
  }

  /**
   * A stateless reset for the short-header packet `msg` (RFC 9000 §10.3): never for long headers (the caller
   * only comes here for short ones), never for a packet too small to answer with a smaller one, at most
   * PRIMARY_RESET_RATE a second. The size check and the bucket come before the HMAC, so a flood costs little.
   */
  private statelessReset(msg: Buffer, len: number, address: string, port: number): void {
    const size = statelessResetSize(len);
    if (size === 0) return;
    if (!this.resetLimit.take()) {
      this.state.addGlobal(G_QUIC_RESETS_RATE_LIMITED);
      return;
    }
    const h = this.hdr;
    const packet = buildStatelessReset(this.resetTokens.token(msg, h.dcidOff, h.dcidLen), size);
    this.state.addGlobal(G_QUIC_STATELESS_RESETS);
    this.sendRaw(packet, address, port);
  }

  /** A reset a shard built: it goes through the same bucket. */
  private sendShardReset(data: Buffer, address: string, port: number): void {
    if (!this.resetLimit.take()) {
      this.state.addGlobal(G_QUIC_RESETS_RATE_LIMITED);
      return;
    }
    this.state.addGlobal(G_QUIC_STATELESS_RESETS);
    this.sendRaw(data, address, port);
  }

  private sendRaw(data: Uint8Array, address: string, port: number): void {
    const v6 = address.includes(':');
    const bound = this.peerSockets?.get(`${address}|${port}`) ?? (v6 ? this.out6 : this.out4);
    if (!bound) return;
    const socket = bound.socket;
    if (socket.getSendQueueCount() >= MAX_SEND_QUEUE) {
      this.state.addGlobal(G_DROP_QUEUE_FULL);
      return;
    }
    // A dual-stack socket sends to IPv4 clients only as IPv4-mapped addresses (EINVAL otherwise).
    socket.send(data, 0, data.length, port, !v6 && bound.family === 6 ? `::ffff:${address}` : address);
  }

  /**
   * A reload found the key ring rotated (keys newest first). Retry tokens are minted with the first Retry key
   * and accepted under any of them, so a token minted just before the rotation still validates while its key
   * stays in the ring. Stateless resets of CIDs this router knows nothing about use the key whose tag the CID
   * carries (src/wire/cid.ts): a connection issued under a key still in the ring is reset with its own token.
   * Retry packets cached for repeated Initials are dropped: their tokens may be of a key that left the ring.
   */
  useKeys(keys: { retryKeys: readonly Buffer[]; resetKeys: readonly Uint8Array[] }): void {
    this.tokens = new RetryTokenMinter({ keys: keys.retryKeys });
    this.resetTokens = new ResetTokens(keys.resetKeys);
    this.retryCache.clear();
  }

  // ---- messages from the shards ----------------------------------------------------------------

  onShardMessage(shard: number, msg: QuicOutMessage): void {
    if (shard >= 0 && shard < this.pending.length) {
      this.pending[shard] = Math.max(0, this.pending[shard] - (msg.ack | 0));
      this.newInFlight[shard] = Math.max(0, this.newInFlight[shard] - (msg.newAck | 0));
    }
    if (msg.buf !== null && msg.n > 0) {
      readBatch(msg.buf, msg.len, (data, host, port, flags) => {
        if (flags & FLAG_STATELESS_RESET) this.sendShardReset(data, host, port);
        else this.sendRaw(data, host, port);
      });
    }
  }

  shardDown(shard: number): void {
    if (shard < 0 || shard >= this.batches.length) return;
    const dropped = this.table.dropShard(shard);
    this.batches[shard].clear();
    this.pending[shard] = 0;
    this.newInFlight[shard] = 0;
    this.logger.warn({ shard, cidEntries: dropped }, 'shard down: its QUIC connections are lost');
  }

  shardUp(shard: number): void {
    if (shard < 0 || shard >= this.batches.length) return;
    this.batches[shard].clear();
    this.pending[shard] = 0;
    this.newInFlight[shard] = 0;
  }

  async close(): Promise<void> {
    if (this.sweepTimer) clearInterval(this.sweepTimer);
    const sockets = this.sockets;
    this.sockets = [];
    this.out4 = undefined;
    this.out6 = undefined;
    await Promise.all(sockets.map((b) => new Promise<void>((resolve) => b.socket.close(() => resolve()))));
  }
}
