// The shard's QUIC endpoint: quiche connections fed with the datagram batches the primary routes here
// (src/primary/udp-router.ts), one timer heap for all of them, and HTTP/3 on top (h3-frontend.ts).
// Sans-socket: outgoing datagrams go back to the primary in batches, each to its SendInfo.to.
//
// After each incoming batch, each timer expiry and each application wake-up, only the connections that
// were touched are flushed (conn.send() until Done); their timers are rescheduled in the heap.
//
// A configuration reload hands the endpoint a new quiche Config (useConfig): connections accepted afterwards
// get its certificate and transport parameters; established ones keep what they were accepted with (quiche
// copies the settings into each connection, and its TLS session holds a reference to the old context).
// A reload that rotated the key ring also brings a new session ticket key (in the new Config) and new
// stateless reset keys (useResetKeys).
import type { Logger } from 'pino';
import type { TransferListItem } from 'node:worker_threads';
import type { Config } from '../config/types.ts';
import type { RateLimiter } from '../ratelimit/limiter.ts';
import type { ConnectionLease } from '../ratelimit/connection-lease.ts';
import { frontendLimits, type FrontendLimits } from '../config/limits.ts';
import type { RequestHandler } from '../shared/http-types.ts';
import {
  SharedState,
  S_CONNECTIONS,
  S_QUIC_CONNECTIONS,
  SC_CONNECTIONS_TOTAL,
  G_QUIC_CONNECTIONS,
  G_QUIC_HANDSHAKES,
  G_QUIC_MIGRATIONS,
  G_QUIC_NAT_REBINDINGS,
  G_QUIC_OLD_PATH_PROBES,
  G_DROP_SHARD_ERROR,
  G_DROP_SHORT_UNKNOWN_CID,
  G_QUIC_RESETS_RATE_LIMITED,
} from '../shared/state.ts';
import { loadQuiche, type HostPort, type QuicheBinding, type QuicheConfig, type QuicheConnection } from './quiche.ts';
import { buildQuicheConfig } from './quiche-config.ts';
import type { QuicInMessage, QuicOutMessage } from './messages.ts';
import { encodeCid } from '../wire/cid.ts';
import { parseHeader, newParsedHeader, LONG_INITIAL, type ParsedHeader } from '../wire/packet-header.ts';
import { DatagramBatchWriter, readBatch, FLAG_NEW_CONNECTION, FLAG_STATELESS_RESET } from '../wire/datagram-batch.ts';
import { ResetTokens, ResetRateLimit, buildStatelessReset, statelessResetSize, SHARD_RESET_RATE, SHARD_RESET_BURST } from '../wire/stateless-reset.ts';
import { TimerDriver } from './timer-heap.ts';
import { QuicConn } from './connection.ts';
import { toQuicError } from './errors.ts';
import { H3Frontend } from './h3-frontend.ts';
import { RecentRefusals } from './recent-refusals.ts';
import { AddressResetLimiter, type ClientResetLimiter } from './reset-limiter.ts';

/** Spare CIDs issued per connection beyond the peer's limit are pointless; this caps a loop on a bad peer. */
const MAX_CID_ISSUE_PER_FLUSH = 8;
/** Old paths drained per connection after migrations (QuicConn.oldPeers). */
const MAX_OLD_PATHS = 2;
const H3_NO_ERROR = 0x100;
/** RFC 9000 §20.1: the server refuses to accept a new connection. */
const CONNECTION_REFUSED = 0x02;
const REFUSED_REASON = Buffer.from('too many connections from your address');

export interface QuicEndpointOptions {
  shard: number;
  config: Config;
  certFile: string;
  keyFile: string;
  state: SharedState;
  logger: Logger;
  post: (msg: QuicOutMessage, transfer?: TransferListItem[]) => void;
  onRequest: RequestHandler;
  /**
   * Key of the stateless reset tokens (src/wire/stateless-reset.ts), the same in the primary and every shard,
   * or the key ring's reset keys newest first.
   */
  resetKey: Uint8Array | readonly Uint8Array[];
  /** Session ticket key (48 octets) shared by every shard and restart; quiche's own random one when absent. */
  ticketKey?: Uint8Array;
  /** rateLimit.maxConnectionsPerClient (shared with TCP and every shard); absent: not limited (test harnesses). */
  limiter?: Pick<RateLimiter, 'acquireConnection'>;
  /** Default: frontendLimits(config). */
  limits?: FrontendLimits;
  /**
   * Per-client-address reset budget. Default: a table of this shard only, maxResetsPerClientPerWindow per
   * resetWindowMs (the shard passes the table all shards share).
   */
  resetLimiter?: ClientResetLimiter;
}

export class QuicEndpoint {
  private readonly shard: number;
  private readonly config: Config;
  private readonly state: SharedState;
  private readonly logger: Logger;
  private readonly post: QuicEndpointOptions['post'];
  private readonly onRequest: RequestHandler;
  private readonly limiter: Pick<RateLimiter, 'acquireConnection'> | undefined;
  /** The places of counted connections in maxConnectionsPerClient, given back in forget(). */
  private readonly leases = new Map<QuicConn, ConnectionLease>();
  private readonly refusals = new RecentRefusals();
  private readonly quiche: QuicheBinding;
  private qconfig: QuicheConfig;
  private ticketKey: Uint8Array | undefined;
  private resetTokens: ResetTokens;
  /** Bounds the HMACs a flood of unknown CIDs costs this shard; the primary's limit is the global one. */
  private readonly resetLimit = new ResetRateLimit(SHARD_RESET_RATE, SHARD_RESET_BURST);
  private stopBudget: number;
  private readonly limits: FrontendLimits;
  private readonly resetLimiter: ClientResetLimiter;
  private readonly sweepTimer: NodeJS.Timeout;
  /** Every CID (hex) of every connection: ours and, until the handshake moves on, the client's Initial DCID. */
  private readonly byCid = new Map<string, QuicConn>();
  private readonly live = new Set<QuicConn>();
  private readonly touched = new Set<QuicConn>();
  private readonly timers: TimerDriver<QuicConn>;
  private readonly hdr: ParsedHeader = newParsedHeader();
  private readonly sendBuf: Buffer;
  private readonly readBuf = Buffer.allocUnsafe(64 * 1024);
  private out = new DatagramBatchWriter();
  private ack = 0;
  private newAck = 0;
  private localPort: number;
  private wakeQueued = false;
  private draining = false;
  private closing = false;

  constructor(opts: QuicEndpointOptions) {
    this.shard = opts.shard;
    this.config = opts.config;
    this.state = opts.state;
    this.logger = opts.logger.child({ component: 'quic' });
    this.post = opts.post;
    this.onRequest = opts.onRequest;
    this.limiter = opts.limiter;
    this.quiche = loadQuiche();
    this.ticketKey = opts.ticketKey;
    this.qconfig = buildQuicheConfig(opts.config, opts.certFile, opts.keyFile, opts.ticketKey);
    this.resetTokens = new ResetTokens(opts.resetKey);
    this.sendBuf = Buffer.allocUnsafe(Math.max(1200, opts.config.quic.maxUdpPayloadSize));
    this.stopBudget = stopBudgetOf(opts.config);
    this.localPort = opts.config.server.httpsPort;
    this.limits = opts.limits ?? frontendLimits(opts.config);
    this.resetLimiter =
      opts.resetLimiter ?? new AddressResetLimiter(this.limits.maxResetsPerClientPerWindow, this.limits.resetWindowMs);
    // Read and write timeouts are checked on one timer for all connections, a quarter of the shortest
    // timeout apart (at most 1 s, at least 25 ms): a timeout fires between 1 and 1.25 times its value.
    const shortest = Math.min(this.limits.readTimeoutMs || Infinity, this.limits.writeTimeoutMs || Infinity);
    this.sweepTimer = setInterval(() => this.sweep(), Math.max(25, Math.min(1000, Math.floor(shortest / 4))));
    this.sweepTimer.unref();
    this.timers = new TimerDriver<QuicConn>(
      (qc) => this.onTimer(qc),
      () => this.flush(),
    );
  }

  /** A batch of datagrams from the primary's UDP router. */
  receiveBatchMessage(msg: QuicInMessage): void {
    this.receiveBatch(msg.buf, msg.len | 0, msg.n | 0, msg.lport | 0);
  }

  /**
   * A quiche Config for `config` (config.quic, loadBalancer.connectionMigration) and the certificate pair, with
   * session ticket key `ticketKey` (this endpoint's when absent). Throws a QuicError when the files cannot be
   * loaded or the key set; nothing changes until useConfig().
   */
  buildConfig(config: Config, certFile: string, keyFile: string, ticketKey: Uint8Array | undefined = this.ticketKey): QuicheConfig {
    return buildQuicheConfig(config, certFile, keyFile, ticketKey);
  }

  /**
   * Connections accepted from now on use `qconfig` (built by buildConfig from `config`, with `ticketKey` when
   * one was given); open ones keep theirs. BoringSSL holds one ticket key per Config, so after a change a
   * ticket of the old key gets a full handshake.
   */
  useConfig(qconfig: QuicheConfig, config: Config, ticketKey: Uint8Array | undefined = this.ticketKey): void {
    this.qconfig = qconfig;
    this.ticketKey = ticketKey;
    this.stopBudget = stopBudgetOf(config);
  }

  /**
   * Stateless reset keys after a key ring rotation, newest first: CIDs issued from now on (for new and open
   * connections) carry the first key's tag and token; CIDs issued before keep theirs, and packets for them
   * that nobody here knows are reset with their own key while it stays in the ring.
   */
  useResetKeys(keys: readonly Uint8Array[]): void {
    this.resetTokens = new ResetTokens(keys);
  }

  connectionCount(): number {
    return this.live.size;
  }

  /** Per-stream state summed over every connection of this shard, plus the connection count. */
  stateCounts(): Record<string, number> {
    const out: Record<string, number> = { connections: this.live.size };
    for (const qc of this.live) {
      const c = qc.app?.stateCounts() ?? {};
      for (const k in c) out[k] = (out[k] ?? 0) + c[k];
    }
    return out;
  }

  goaway(): void {
    this.draining = true;
    for (const qc of this.live) {
      qc.app?.goaway();
      this.touched.add(qc);
    }
    this.flush();
    // Browsers keep idle HTTP/3 connections open until their idle timeout; once a connection has no
    // request in flight after GOAWAY, close it (H3_NO_ERROR) so the drain ends as soon as work does.
    const sweep = setInterval(() => {
      if (this.closing) return clearInterval(sweep);
      for (const qc of this.live) {
        if ((qc.app?.inFlight() ?? 0) > 0) continue;
        try {
          qc.conn.close(true, H3_NO_ERROR, new Uint8Array(0));
        } catch {
          // already closing
        }
        this.touched.add(qc);
      }
      this.flush();
      if (this.live.size === 0) clearInterval(sweep);
    }, 100);
    sweep.unref();
  }

  async close(): Promise<void> {
    this.closing = true;
    this.draining = true;
    for (const qc of this.live) {
      try {
        qc.conn.close(true, H3_NO_ERROR, new Uint8Array(0));
      } catch {
        // Already closing: quiche answers Done.
      }
      this.touched.add(qc);
    }
    this.flush();
    for (const qc of [...this.live]) this.forget(qc);
    this.timers.stop();
    clearInterval(this.sweepTimer);
  }

  /** Timeouts of every connection; one that acts wakes itself (touched + flush on the next turn). */
  private sweep(): void {
    const now = performance.now();
    for (const qc of this.live) {
      if (qc.app === undefined) continue;
      try {
        qc.app.sweep(now);
      } catch (err) {
        this.logger.error({ err, conn: qc.key }, 'HTTP/3 sweep failed');
      }
    }
  }

  // ---- receive -------------------------------------------------------------------------------

  private receiveBatch(buf: ArrayBuffer, len: number, n: number, lport: number): void {
    if (lport > 0) this.localPort = lport;
    let fresh = 0;
    const ok = readBatch(buf, len, (data, host, port, flags, odcid) => {
      if (flags & FLAG_NEW_CONNECTION) fresh++;
      this.receive(data, host, port, odcid);
    });
    if (!ok) this.state.addGlobal(G_DROP_SHARD_ERROR);
    this.ack += n;
    this.newAck += fresh;
    this.flush();
  }

  private receive(data: Buffer, host: string, port: number, odcid: Buffer | null): void {
    const h = this.hdr;
    if (!parseHeader(data, data.length, h)) {
      this.state.addGlobal(G_DROP_SHARD_ERROR);
      return;
    }
    const key = data.toString('hex', h.dcidOff, h.dcidOff + h.dcidLen);
    let qc = this.byCid.get(key);
    let created = false;
    const peer: HostPort = { host, port };
    if (qc === undefined) {
      if (!h.long || h.type !== LONG_INITIAL) {
        // The connection died with an earlier incarnation of this shard, or closed a moment ago. A short
        // header gets a stateless reset so the client stops at once (RFC 9000 §10.3); a long header never does.
        this.state.addGlobal(G_DROP_SHORT_UNKNOWN_CID);
        if (!h.long) this.statelessReset(data, h, host, port);
        return;
      }
      qc = this.accept(data, h, peer, odcid);
      if (qc === undefined) return;
      created = true;
    }
    // Remember which CID each path uses: a deliberate migration switches CID (RFC 9000 §9.5), a NAT
    // rebinding does not (the client does not know it moved).
    if (qc.peer.port === port && qc.peer.host === host) qc.peerDcid = key;
    else qc.otherDcid = key;
    try {
      qc.conn.recv(data, { from: peer, to: qc.local });
    } catch (err) {
      this.state.addGlobal(G_DROP_SHARD_ERROR);
      if (created) {
        // A first packet quiche refuses leaves nothing worth keeping (no answer is owed to garbage).
        this.forget(qc);
        return;
      }
      this.logger.debug({ err: toQuicError(err), conn: qc.key }, 'quiche rejected a datagram');
    }
    this.touched.add(qc);
  }

  private accept(data: Buffer, h: ParsedHeader, peer: HostPort, odcid: Buffer | null): QuicConn | undefined {
    if (this.draining) {
      this.state.addGlobal(G_DROP_SHARD_ERROR);
      return undefined;
    }
    const clientDcid = data.subarray(h.dcidOff, h.dcidOff + h.dcidLen);
    // The rest of a refused attempt (recent-refusals.ts) is answered or dropped, and never counted again.
    const now = performance.now();
    const dcidHex = clientDcid.toString('hex');
    const again = this.refusals.check(dcidHex, now);
    if (again === 'drop') return undefined;
    // After a Retry the client's DCID is the CID the primary minted for this shard (RFC 9000 §7.3:
    // it becomes retry_source_connection_id, and quiche keeps it as the connection's CID).
    const scid = odcid ? Buffer.from(clientDcid) : encodeCid(this.shard, this.resetTokens.tag);
    // Only quiche's path bookkeeping reads the local address (the primary owns the sockets): the family's
    // wildcard is enough. Peers arrive normalised (IPv4 clients as IPv4, also through a dual-stack socket).
    const local: HostPort = { host: peer.host.includes(':') ? '::' : '0.0.0.0', port: this.localPort };
    let conn;
    try {
      // The token of the handshake's own CID travels in the transport parameters (RFC 9000 §18.2
      // stateless_reset_token), which quiche copies from the Config into each connection at accept():
      // setting it right before accept() gives every connection its own derived token (docs/quiche.md).
      this.qconfig.setStatelessResetToken(this.resetTokens.tokenBigInt(scid));
      conn = this.quiche.Connection.accept(scid, odcid, local, peer, this.qconfig);
    } catch (err) {
      this.state.addGlobal(G_DROP_SHARD_ERROR);
      this.logger.debug({ err: toQuicError(err) }, 'quiche refused a new connection');
      return undefined;
    }
    const admission = again === undefined ? this.limiter?.acquireConnection(peer.host) : undefined;
    if (again === 'answer' || (admission !== undefined && !admission.ok)) {
      if (admission !== undefined && !admission.ok && admission.log) {
        this.logger.warn(
          { client: admission.client, reason: admission.reason, limit: admission.limit },
          'client over rateLimit.maxConnectionsPerClient: QUIC connections refused; not logged again for rateLimit.logInterval',
        );
      }
      this.refusals.add(dcidHex, 'answer', now);
      if (!odcid) this.refusals.add(scid.toString('hex'), 'drop', now);
      this.refuse(conn, data, local, peer);
      return undefined;
    }
    const qc = new QuicConn(conn, scid.toString('hex'), local, peer);
    if (admission?.lease.counted) this.leases.set(qc, admission.lease);
    this.register(qc, qc.key);
    // Chromium's second Initial datagram and 0-RTT packets still carry the client-chosen DCID.
    this.register(qc, dcidHex);
    this.live.add(qc);
    this.state.addShardGauge(this.shard, S_QUIC_CONNECTIONS, 1);
    this.state.addShardGauge(this.shard, S_CONNECTIONS, 1);
    this.state.addShardCounter(this.shard, SC_CONNECTIONS_TOTAL);
    this.state.addGlobal(G_QUIC_CONNECTIONS);
    return qc;
  }

  /**
   * A client over rateLimit.maxConnectionsPerClient gets CONNECTION_CLOSE with CONNECTION_REFUSED
   * (RFC 9000 §5.2.2) and no connection is kept (no timer, no gauge; only its CIDs in `refusals`).
   * quiche writes a CONNECTION_CLOSE in the newest epoch it has keys for, which after a complete
   * ClientHello is Handshake, unreadable by a client that has not seen the ServerHello; so the first
   * datagram of the server's flight (the Initial with the ServerHello) goes out first and the close right
   * after it. Checked with quiche as the client: closing at once sent only a Handshake packet the client
   * could not open; sending the whole flight first used up the anti-amplification budget (RFC 9000 §8.1:
   * 3 x 1200 bytes) before the close with a 5.4 KB certificate chain; first datagram then close reached the
   * client as transport error 0x2 with both a short and that long chain.
   */
  private refuse(conn: QuicheConnection, data: Buffer, local: HostPort, peer: HostPort): void {
    const buf = this.sendBuf;
    try {
      conn.recv(data, { from: peer, to: local });
      let r = conn.send(buf);
      if (r !== null) this.appendOut(buf, r[0], r[1].to);
      conn.close(false, CONNECTION_REFUSED, REFUSED_REASON);
      for (r = conn.send(buf); r !== null; r = conn.send(buf)) this.appendOut(buf, r[0], r[1].to);
    } catch (err) {
      // Garbage: no reply is owed.
      this.logger.debug({ err: toQuicError(err) }, 'could not refuse a QUIC connection');
    }
  }

  private appendOut(buf: Buffer, len: number, to: HostPort): void {
    if (!this.out.fits(len)) this.postOut();
    this.out.append(buf, len, to.host, to.port);
  }

  private register(qc: QuicConn, key: string): void {
    qc.cids.add(key);
    this.byCid.set(key, qc);
  }

  // ---- timers and wake-ups -------------------------------------------------------------------

  private onTimer(qc: QuicConn): void {
    if (qc.gone) return;
    qc.conn.onTimeout();
    this.touched.add(qc);
  }

  /** The application wrote or resumed reading outside a receive/timer turn: flush soon, once. */
  private wake(qc: QuicConn): void {
    if (qc.gone) return;
    this.touched.add(qc);
    if (this.wakeQueued) return;
    this.wakeQueued = true;
    setImmediate(() => {
      this.wakeQueued = false;
      this.flush();
    });
  }

  // ---- flush ---------------------------------------------------------------------------------

  private flush(): void {
    const now = performance.now();
    // Servicing the app can touch more connections (none today), so loop until quiet.
    for (const qc of this.touched) {
      this.touched.delete(qc);
      if (qc.gone) continue;
      this.service(qc);
      this.drainSend(qc);
      // Closed by the peer (CONNECTION_CLOSE) or by us: nothing more can be sent or received, so the
      // requests on it end now rather than after the draining period (RFC 9000 §10.2).
      if (qc.app !== undefined && (qc.conn.isDraining() || qc.conn.isClosed())) this.closeApp(qc);
      if (qc.conn.isClosed()) {
        this.forget(qc);
        continue;
      }
      const t = qc.conn.timeout();
      if (t === null) this.timers.heap.remove(qc);
      else this.timers.heap.schedule(qc, now + t);
    }
    this.timers.rearm();
    this.postOut();
  }

  private service(qc: QuicConn): void {
    const conn = qc.conn;
    if (!qc.established && conn.isEstablished()) {
      qc.established = true;
      this.state.addGlobal(G_QUIC_HANDSHAKES);
      if (!this.closing) {
        qc.app = new H3Frontend({
          qc,
          shard: this.shard,
          localPort: this.localPort,
          readBuf: this.readBuf,
          logger: this.logger,
          onRequest: this.onRequest,
          wake: () => this.wake(qc),
          stopBudget: this.stopBudget,
          limits: this.limits,
          resetLimiter: this.resetLimiter,
        });
        if (this.draining) qc.app.goaway();
      }
    }
    if (!qc.established) return;
    this.issueCids(qc);
    this.pathEvents(qc);
    let retired: Uint8Array | null;
    while ((retired = conn.retiredScidNext()) !== null) {
      const k = Buffer.from(retired).toString('hex');
      qc.cids.delete(k);
      if (this.byCid.get(k) === qc) this.byCid.delete(k);
    }
    try {
      qc.app?.service();
    } catch (err) {
      this.logger.error({ err, conn: qc.key }, 'HTTP/3 layer failed; closing the connection');
      try {
        conn.close(true, 0x102, Buffer.from('internal error'));
      } catch {
        // already closing
      }
    }
  }

  /**
   * quiche issues no spare CIDs on its own; without them a client cannot migrate (RFC 9000 §5.1.1,
   * §9.5). Each encodes this shard, so the primary routes the migrated path with no table entry.
   */
  private issueCids(qc: QuicConn): void {
    const conn = qc.conn;
    for (let i = 0; i < MAX_CID_ISSUE_PER_FLUSH && conn.sourceCidsLeft() > 0; i++) {
      const cid = encodeCid(this.shard, this.resetTokens.tag);
      try {
        conn.newSourceCid(cid, this.resetTokens.tokenBigInt(cid), false);
      } catch (err) {
        this.logger.debug({ err: toQuicError(err), conn: qc.key }, 'newSourceCid refused');
        return;
      }
      this.register(qc, cid.toString('hex'));
    }
  }

  private pathEvents(qc: QuicConn): void {
    const conn = qc.conn;
    let ev;
    while ((ev = conn.pathEventNext()) !== null) {
      if (ev.type === 'PeerMigrated') {
        const from = qc.peer;
        const to = ev.new;
        // A new IP, or a new CID (RFC 9000 §9.5: a client that migrates on purpose switches CID): migration.
        // Same IP and same CID, new port: a NAT rebinding (RFC 9000 §9.3), the client did not choose it.
        const cidChanged = qc.otherDcid !== '' && qc.otherDcid !== qc.peerDcid;
        const rebinding = from.host === to.host && !cidChanged;
        this.state.addGlobal(rebinding ? G_QUIC_NAT_REBINDINGS : G_QUIC_MIGRATIONS);
        this.logger.info(
          { conn: qc.key, from: `${from.host}:${from.port}`, to: `${to.host}:${to.port}`, cidChanged },
          rebinding ? 'QUIC NAT rebinding' : 'QUIC connection migrated',
        );
        qc.oldPeers = qc.oldPeers.filter((p) => (p.host !== from.host || p.port !== from.port) && (p.host !== to.host || p.port !== to.port));
        qc.oldPeers.push(from);
        if (qc.oldPeers.length > MAX_OLD_PATHS) qc.oldPeers.shift();
        qc.peer = { host: to.host, port: to.port };
        qc.peerDcid = qc.otherDcid;
      } else {
        this.logger.debug({ conn: qc.key, event: ev.type }, 'QUIC path event');
      }
    }
  }

  private drainSend(qc: QuicConn): void {
    const conn = qc.conn;
    const buf = this.sendBuf;
    for (;;) {
      let r;
      try {
        r = conn.send(buf);
      } catch (err) {
        this.logger.debug({ err: toQuicError(err), conn: qc.key }, 'quiche send failed');
        return;
      }
      if (r === null) break;
      const [len, info] = r;
      if (!this.out.fits(len)) this.postOut();
      this.out.append(buf, len, info.to.host, info.to.port);
    }
    if (qc.oldPeers.length > 0) this.drainOldPaths(qc);
  }

  /**
   * After a migration quiche 0.18 keeps the old path with its own loss recovery, and conn.send() only ever
   * sends on the active path. A packet lost on the old path that carried no stream data (typically the
   * MAX_STREAM_DATA the client waits for; it went to the address the client just left) is then never
   * declared lost: ACKs of packets sent on the new path acknowledge nothing the old path's recovery sent,
   * so its loss detection never runs, and its PTO probe waits for a send on the old path. The client stays
   * blocked by flow control until the idle timeout (measured, README "How it is built": 9 of 40 NAT-rebinding
   * uploads and 8 of 80 migrating downloads hung without this, none of 180 with it).
   * So the old paths are drained too, and what quiche sends there goes to the client's current address:
   * the old one is gone (NAT rebinding, network change), and the client's ACK of the probe lets quiche
   * declare the lost packet lost and resend its frames on the active path.
   */
  private drainOldPaths(qc: QuicConn): void {
    const conn = qc.conn;
    const buf = this.sendBuf;
    for (let i = 0; i < qc.oldPeers.length; i++) {
      for (;;) {
        let r;
        try {
          r = conn.sendOnPath(buf, qc.local, qc.oldPeers[i]);
        } catch {
          // quiche no longer knows that path.
          qc.oldPeers.splice(i--, 1);
          break;
        }
        if (r === null) break;
        const len = r[0];
        if (!this.out.fits(len)) this.postOut();
        this.out.append(buf, len, qc.peer.host, qc.peer.port);
        this.state.addGlobal(G_QUIC_OLD_PATH_PROBES);
      }
    }
  }

  /** A reset for a short-header packet nobody here knows, handed to the primary to send (and rate-limit). */
  private statelessReset(data: Buffer, h: ParsedHeader, host: string, port: number): void {
    const size = statelessResetSize(data.length);
    if (size === 0) return;
    if (!this.resetLimit.take()) {
      this.state.addGlobal(G_QUIC_RESETS_RATE_LIMITED);
      return;
    }
    const packet = buildStatelessReset(this.resetTokens.token(data, h.dcidOff, h.dcidLen), size);
    if (!this.out.fits(size)) this.postOut();
    this.out.append(packet, size, host, port, FLAG_STATELESS_RESET);
  }

  private postOut(): void {
    const m = this.out.take();
    if (m === null && this.ack === 0 && this.newAck === 0) return;
    const msg: QuicOutMessage = { type: 'quic:out', buf: m?.buf ?? null, len: m?.len ?? 0, n: m?.n ?? 0, ack: this.ack, newAck: this.newAck };
    this.ack = 0;
    this.newAck = 0;
    if (m) this.post(msg, [m.buf]);
    else this.post(msg);
  }

  private forget(qc: QuicConn): void {
    if (qc.gone) return;
    qc.gone = true;
    for (const k of qc.cids) if (this.byCid.get(k) === qc) this.byCid.delete(k);
    qc.cids.clear();
    this.timers.heap.remove(qc);
    this.live.delete(qc);
    this.touched.delete(qc);
    this.state.addShardGauge(this.shard, S_QUIC_CONNECTIONS, -1);
    this.state.addShardGauge(this.shard, S_CONNECTIONS, -1);
    this.leases.get(qc)?.release();
    this.leases.delete(qc);
    this.closeApp(qc);
  }

  private closeApp(qc: QuicConn): void {
    try {
      qc.app?.closed();
    } catch (err) {
      this.logger.error({ err, conn: qc.key }, 'HTTP/3 close handler failed');
    }
  }
}

/**
 * Each stopped request stream may cost up to a stream window of connection credit: GOAWAY before half the
 * connection window could be gone (H3Frontend.stopReading).
 */
function stopBudgetOf(config: Config): number {
  const q = config.quic;
  return Math.max(1, Math.floor(q.initialMaxData / (2 * Math.max(1, q.initialMaxStreamData))));
}
