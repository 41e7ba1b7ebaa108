// A small HTTP/3 client (RFC 9114) for the bench: quiche's sans-IO QUIC connection (the same binding quiclb
// runs on) over one connected node:dgram socket, with quiclb's own HTTP/3 framing (src/http3/frames.ts) and
// QPACK (src/http3/qpack). It opens the control stream with SETTINGS, sends requests as QPACK field sections
// that never use the dynamic table (Required Insert Count 0; we advertise a zero-capacity table, so the peer
// cannot use one either: RFC 9204 §3.2.3), multiplexes requests on bidirectional streams and reads responses
// with the FrameReader. It is checked against Caddy (quic-go) in test/integration/bench.test.ts.
// For fuzzing and protocol tests it can also send raw bytes on any client stream (sendRaw: request streams,
// its own control stream, QPACK and reserved uni streams) and shut down any stream (shutdownStream).
import dgram from 'node:dgram';
import { randomBytes } from 'node:crypto';
import { loadQuiche, type HostPort, type QuicheBinding, type QuicheConfig, type QuicheConnection } from '../../src/quic/quiche.ts';
import { quicErrorCode, toQuicError } from '../../src/quic/errors.ts';
import { FrameReader, encodeDataFrameHeader, encodeHeadersFrame, encodeSettingsFrame } from '../../src/http3/frames.ts';
import { encodeFieldSection } from '../../src/http3/qpack/encoder.ts';
import { QpackDecoder } from '../../src/http3/qpack/decoder.ts';
import { SETTINGS_MAX_FIELD_SECTION_SIZE, SETTINGS_QPACK_BLOCKED_STREAMS, SETTINGS_QPACK_MAX_TABLE_CAPACITY } from '../../src/http3/settings.ts';
import { H3_NO_ERROR, H3_REQUEST_CANCELLED } from '../../src/http3/errors.ts';
import { VARINT_NEED_MORE, readVarint, varintLength } from '../../src/http3/varint.ts';

export type H3ClientErrorCode =
  | 'H3C_CONNECT_TIMEOUT'
  | 'H3C_CLOSED'
  | 'H3C_STREAM_RESET'
  | 'H3C_PROTOCOL'
  | 'H3C_TIMEOUT'
  | 'H3C_GOAWAY'
  | 'H3C_STREAM_LIMIT';

export class H3ClientError extends Error {
  readonly code: H3ClientErrorCode;
  /** The peer's application error code: of RESET_STREAM for H3C_STREAM_RESET, of CONNECTION_CLOSE for H3C_CLOSED. */
  readonly appCode: number | undefined;
  constructor(code: H3ClientErrorCode, message: string, appCode?: number) {
    super(message);
    this.name = 'H3ClientError';
    this.code = code;
    this.appCode = appCode;
  }
}

export interface H3ConnectOptions {
  host: string;
  port: number;
  /** TLS SNI; default 'localhost'. The peer certificate is not verified (bench and interop checks only). */
  servername?: string;
  connectTimeoutMs?: number;
  /** quiche's max_udp_payload_size (RFC 9000 §18.2); default 1350 as quiclb. */
  maxUdpPayloadSize?: number;
  /**
   * Response bytes the server may send on one stream before we read them (initial_max_stream_data_bidi_local);
   * default 4 MiB. Tests that stop reading use a small one so the server's stream blocks soon.
   */
  streamWindow?: number;
  /** max_idle_timeout offered (RFC 9000 §10.1); default 30 s. The idle-connection bench holds them longer. */
  idleTimeoutMs?: number;
  /**
   * What to send on our control stream (id 2) once connected, instead of the stream type and our SETTINGS;
   * null opens no control stream (the caller may write its own with sendRaw). For protocol tests and fuzzing.
   */
  controlStream?: Uint8Array | null;
}

export interface H3RequestOptions {
  method?: string;
  path: string;
  /** :authority; default host:port. */
  authority?: string;
  headers?: Array<[string, string]>;
  body?: Uint8Array;
  /** Keep the body bytes (default false: only count them, as the load generator does). */
  collectBody?: boolean;
  timeoutMs?: number;
  /** Exactly these field lines (pseudo-headers included, nothing added, any case): malformed-request tests. */
  rawFields?: Array<[string, string]>;
  /** This encoded field section (RFC 9204 §4.5) as the HEADERS payload instead of encoding fields. */
  fieldSection?: Uint8Array;
  /** These bytes open the stream instead of HEADERS and `body` (e.g. half a HEADERS frame). */
  rawStart?: Uint8Array;
  /** false: the request stream stays open after HEADERS and `body` (continue with H3Stream.send). Default true. */
  endStream?: boolean;
  /** Do not read the response until H3Stream.pauseReading(false): quiche's flow control then holds the server. */
  paused?: boolean;
  /** Called with the final response's status and fields as soon as they arrive (before the body). */
  onResponseHead?: (status: number, headers: Array<[string, string]>) => void;
  /** Called with each DATA payload as it arrives (a copy), for streams that carry more than a body (WebSocket, RFC 9220). */
  onData?: (chunk: Buffer) => void;
}

/** One request stream, for tests that act on it while it runs (send more, reset, stop reading). */
export interface H3Stream {
  readonly streamId: number;
  /** Settles when the response is complete, or rejects (reset, timeout, connection closed). Never unhandled. */
  readonly response: Promise<H3Response>;
  /** More request body as one DATA frame; `fin` ends the request. */
  send(body: Uint8Array, fin?: boolean): void;
  /** Ends the request (FIN) without more data. */
  end(): void;
  /** RESET_STREAM on our sending side (RFC 9000 §3.1): the request is abandoned mid-way. */
  reset(code?: number): void;
  /** STOP_SENDING (RFC 9000 §3.5): we do not want the response. */
  stopSending(code?: number): void;
  /** Stops or resumes reading the response from quiche. */
  pauseReading(paused: boolean): void;
}

export interface H3Response {
  status: number;
  headers: Array<[string, string]>;
  /** Statuses of the interim (1xx) responses before the final one, in order. */
  interim: number[];
  bytes: number;
  body?: Buffer;
}

// RFC 9114 §6.2 / RFC 9204 §4.2 unidirectional stream types.
const UNI_CONTROL = 0x00;
const UNI_QPACK_ENCODER = 0x02;
// Client-initiated unidirectional stream ids (RFC 9000 §2.1): 2, 6, 10.
const CONTROL_STREAM_ID = 2;
const MAX_FIELD_SECTION = 65536;
const RECV_BUF = 65536;

interface PendingRequest {
  streamId: number;
  reader: FrameReader;
  status: number;
  headers: Array<[string, string]>;
  interim: number[];
  bytes: number;
  chunks: Buffer[] | undefined;
  /** Bytes not yet accepted by quiche (flow control), sent when the stream becomes writable. */
  out: Uint8Array[];
  fin: boolean;
  resolve: (r: H3Response) => void;
  reject: (e: Error) => void;
  timer: NodeJS.Timeout | undefined;
  paused: boolean;
  onResponseHead: ((status: number, headers: Array<[string, string]>) => void) | undefined;
  onData: ((chunk: Buffer) => void) | undefined;
}

interface PeerUniStream {
  type: number;
  reader: FrameReader | undefined;
}

/** The binding (the thread-safe copy when there is one), loaded on first use in this thread. */
const quiche = (): QuicheBinding => loadQuiche();

const configs = new Map<string, QuicheConfig>();

/** One quiche Config per payload size, window, idle timeout and thread: building one loads BoringSSL state. */
function clientConfig(maxUdpPayload: number, streamWindow: number, idleTimeoutMs: number): QuicheConfig {
  const key = `${maxUdpPayload}/${streamWindow}/${idleTimeoutMs}`;
  let c = configs.get(key);
  if (c) return c;
  c = new (quiche().Config)();
  c.verifyPeer(false);
  c.setApplicationProtos(['h3']);
  c.setMaxIdleTimeout(idleTimeoutMs);
  c.setMaxRecvUdpPayloadSize(maxUdpPayload);
  c.setMaxSendUdpPayloadSize(maxUdpPayload);
  c.setInitialMaxData(32 * 1024 * 1024);
  c.setInitialMaxStreamDataBidiLocal(streamWindow);
  // quiche grows a stream window as the application reads (autotuning); a test's small window must stay small.
  if (streamWindow < 4 * 1024 * 1024) c.setMaxStreamWindow(streamWindow);
  c.setInitialMaxStreamDataBidiRemote(1024 * 1024);
  c.setInitialMaxStreamDataUni(1024 * 1024);
  c.setInitialMaxStreamsBidi(0);
  c.setInitialMaxStreamsUni(16);
  c.setDisableActiveMigration(true);
  configs.set(key, c);
  return c;
}

export class H3Connection {
  private readonly sock: dgram.Socket;
  private readonly conn: QuicheConnection;
  private readonly local: HostPort;
  private readonly peer: HostPort;
  private readonly authority: string;
  private readonly sendBuf: Buffer;
  private readonly recvBuf = Buffer.allocUnsafe(RECV_BUF);
  private readonly decoder = new QpackDecoder({ maxTableCapacity: 0, maxBlockedStreams: 0, maxFieldSectionSize: MAX_FIELD_SECTION });
  private readonly requests = new Map<number, PendingRequest>();
  private readonly peerUni = new Map<number, PeerUniStream>();
  /** Requests waiting for stream credit (quiche StreamLimit): bounded by the caller's own concurrency. */
  private readonly waiting: Array<() => void> = [];
  /** Bytes for uni streams written with sendRaw, waiting for stream credit. */
  private readonly rawUni = new Map<number, { out: Uint8Array[]; fin: boolean }>();
  /** Outcomes of request streams opened with sendRaw. */
  private readonly rawResults = new Map<number, Promise<H3Response>>();
  private controlStream: Uint8Array | null | undefined;
  private nextStreamId = 0;
  private timer: NodeJS.Timeout | undefined;
  private timerAt = 0;
  private processScheduled = false;
  private established = false;
  private closed = false;
  private goaway = false;
  private onEstablished: (() => void) | undefined;
  private onFail: ((e: Error) => void) | undefined;
  /** Why the connection ended, for requests that fail after it. */
  private closeReason = '';
  /** The server's SETTINGS (identifier -> value) once its control stream delivered them. */
  peerSettings: Map<number, number> | undefined;
  /** The CONNECTION_CLOSE that ended the connection, once it did. */
  closeError: { isApp: boolean; errorCode: number; reason: string; byPeer: boolean } | undefined;

  private constructor(sock: dgram.Socket, local: HostPort, peer: HostPort, servername: string, maxUdpPayload: number, streamWindow: number, idleTimeoutMs: number) {
    this.sock = sock;
    this.local = local;
    this.peer = peer;
    this.authority = `${peer.host}:${peer.port}`;
    this.sendBuf = Buffer.allocUnsafe(maxUdpPayload);
    this.conn = quiche().Connection.connect(servername, randomBytes(16), local, peer, clientConfig(maxUdpPayload, streamWindow, idleTimeoutMs));
    sock.on('message', (msg) => this.onDatagram(msg));
    sock.on('error', (err) => this.fail(new H3ClientError('H3C_CLOSED', `UDP socket error: ${err.message}`)));
  }

  /** Connects and completes the QUIC handshake; the control stream is opened right after. */
  static async connect(opts: H3ConnectOptions): Promise<H3Connection> {
    const sock = dgram.createSocket('udp4');
    await new Promise<void>((resolve, reject) => {
      sock.once('error', reject);
      sock.bind(0, '127.0.0.1', () => {
        sock.off('error', reject);
        resolve();
      });
    });
    await new Promise<void>((resolve) => sock.connect(opts.port, opts.host, () => resolve()));
    // A 1 MiB response arrives faster than one event-loop turn drains it: room for bursts (capped by rmem_max).
    try {
      sock.setRecvBufferSize(4 * 1024 * 1024);
      sock.setSendBufferSize(1024 * 1024);
    } catch {
      // the kernel's default then
    }
    const local = { host: '127.0.0.1', port: sock.address().port };
    const h = new H3Connection(
      sock,
      local,
      { host: opts.host, port: opts.port },
      opts.servername ?? 'localhost',
      opts.maxUdpPayloadSize ?? 1350,
      opts.streamWindow ?? 4 * 1024 * 1024,
      opts.idleTimeoutMs ?? 30_000,
    );
    h.controlStream = opts.controlStream;
    const timeoutMs = opts.connectTimeoutMs ?? 5000;
    await new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => {
        h.fail(new H3ClientError('H3C_CONNECT_TIMEOUT', `no QUIC handshake with ${opts.host}:${opts.port} in ${timeoutMs} ms`));
      }, timeoutMs);
      h.onEstablished = () => {
        clearTimeout(t);
        resolve();
      };
      h.onFail = (e) => {
        clearTimeout(t);
        reject(e);
      };
      h.flush();
    });
    h.onFail = undefined;
    return h;
  }

  get isOpen(): boolean {
    return !this.closed && !this.goaway;
  }

  /** The server's certificate (DER) as this connection's handshake received it (tests check which one was served). */
  peerCertificate(): Buffer | undefined {
    const chain = this.conn.peerCertChain();
    return chain === null || chain.length === 0 ? undefined : Buffer.from(chain[0]);
  }

  /** Sends one request and resolves with the whole response (status, headers, body length). */
  async request(opts: H3RequestOptions): Promise<H3Response> {
    return (await this.openStream(opts)).response;
  }

  /**
   * Opens a request stream and sends HEADERS (and `body`), waiting for stream credit if the server's
   * MAX_STREAMS is used up; resolves once the stream is open.
   */
  openStream(opts: H3RequestOptions): Promise<H3Stream> {
    if (this.closed) return Promise.reject(new H3ClientError('H3C_CLOSED', `connection closed: ${this.closeReason}`));
    if (this.goaway) return Promise.reject(new H3ClientError('H3C_GOAWAY', 'peer sent GOAWAY'));
    return new Promise<H3Stream>((resolveOpen, rejectOpen) => {
      const start = (): void => {
        if (this.closed) {
          rejectOpen(new H3ClientError('H3C_CLOSED', `connection closed: ${this.closeReason}`));
          return;
        }
        const streamId = this.nextStreamId;
        const fields: Array<[string, string]> = opts.rawFields ?? [
          [':method', opts.method ?? 'GET'],
          [':scheme', 'https'],
          [':authority', opts.authority ?? this.authority],
          [':path', opts.path],
          ...(opts.headers ?? []),
        ];
        const out: Uint8Array[] = opts.rawStart ? [opts.rawStart] : [encodeHeadersFrame(opts.fieldSection ?? encodeFieldSection(fields))];
        if (!opts.rawStart && opts.body && opts.body.length > 0) out.push(encodeDataFrameHeader(opts.body.length), opts.body);
        let resolve!: (r: H3Response) => void;
        let reject!: (e: Error) => void;
        const response = new Promise<H3Response>((res, rej) => {
          resolve = res;
          reject = rej;
        });
        response.catch(() => undefined); // a caller that never awaits it gets no unhandled rejection
        const req: PendingRequest = {
          streamId,
          reader: new FrameReader(MAX_FIELD_SECTION),
          status: 0,
          headers: [],
          interim: [],
          bytes: 0,
          chunks: opts.collectBody ? [] : undefined,
          out,
          fin: opts.endStream !== false,
          resolve,
          reject,
          timer: undefined,
          paused: opts.paused === true,
          onResponseHead: opts.onResponseHead,
          onData: opts.onData,
        };
        // The first write opens the stream; StreamLimit means the peer's MAX_STREAMS is used up: wait for credit.
        if (!this.writeStream(req, true)) {
          this.waiting.push(start);
          return;
        }
        this.nextStreamId += 4;
        this.requests.set(streamId, req);
        if (opts.timeoutMs) {
          req.timer = setTimeout(() => this.finishRequest(req, new H3ClientError('H3C_TIMEOUT', `no response in ${opts.timeoutMs} ms`)), opts.timeoutMs);
        }
        this.flush();
        resolveOpen(this.handle(req, response));
      };
      start();
    });
  }

  /** Sends bytes on a client unidirectional stream (2 is our control stream; 6, 10, ... are free). */
  sendUni(streamId: number, data: Uint8Array): void {
    this.conn.streamSend(streamId, data, false);
    this.flush();
  }

  private handle(req: PendingRequest, response: Promise<H3Response>): H3Stream {
    const shutdown = (direction: number, code: number, why: string): void => {
      try {
        this.conn.streamShutdown(req.streamId, direction, code);
      } catch {
        // already finished in that direction
      }
      req.out = [];
      this.finishRequest(req, new H3ClientError('H3C_STREAM_RESET', why));
      this.flush();
    };
    return {
      streamId: req.streamId,
      response,
      send: (body, fin = false) => {
        req.out.push(encodeDataFrameHeader(body.length), body);
        req.fin = fin;
        this.writeStream(req, false);
        this.flush();
      },
      end: () => {
        req.fin = true;
        if (req.out.length === 0) req.out.push(new Uint8Array(0));
        this.writeStream(req, false);
        this.flush();
      },
      reset: (code = H3_REQUEST_CANCELLED) => shutdown(1, code, `stream ${req.streamId} reset by the client`),
      stopSending: (code = H3_REQUEST_CANCELLED) => shutdown(0, code, `stream ${req.streamId} stopped by the client`),
      pauseReading: (paused) => {
        req.paused = paused;
        if (!paused) {
          this.readStreams();
          this.flush();
        }
      },
    };
  }

  /**
   * Raw bytes on a client-initiated stream, written as quiche's flow control allows (protocol tests and
   * fuzzing). On a request stream (id % 4 == 0) the first call opens it and rawResponse(id) reads its answer;
   * on a uni stream (id % 4 == 2) the caller writes the stream type itself. Data after FIN is the caller's
   * mistake to make: quiche refuses it and the stream's outcome says so.
   */
  sendRaw(streamId: number, data: Uint8Array, fin: boolean): void {
    if (this.closed) return;
    if ((streamId & 0x3) === 0) {
      let req = this.requests.get(streamId);
      if (req === undefined && !this.rawResults.has(streamId)) {
        let resolve!: (r: H3Response) => void;
        let reject!: (e: Error) => void;
        const done = new Promise<H3Response>((res, rej) => {
          resolve = res;
          reject = rej;
        });
        done.catch(() => undefined);
        this.rawResults.set(streamId, done);
        req = { streamId, reader: new FrameReader(MAX_FIELD_SECTION), status: 0, headers: [], interim: [], bytes: 0, chunks: undefined, out: [], fin: false, resolve, reject, timer: undefined, paused: false, onResponseHead: undefined, onData: undefined };
        this.requests.set(streamId, req);
        if (streamId >= this.nextStreamId) this.nextStreamId = streamId + 4;
      }
      if (req === undefined) return; // that stream already finished
      req.out.push(data);
      req.fin ||= fin;
      if (!this.writeStream(req, false)) this.finishRequest(req, new H3ClientError('H3C_STREAM_LIMIT', `stream ${streamId}: peer's stream limit`));
    } else {
      let u = this.rawUni.get(streamId);
      if (u === undefined) {
        u = { out: [], fin: false };
        this.rawUni.set(streamId, u);
      }
      u.out.push(data);
      u.fin ||= fin;
      this.writeRawUni(streamId);
    }
    this.flush();
  }

  /** The answer on a request stream opened with sendRaw: rejects with H3ClientError (a reset carries appCode). */
  rawResponse(streamId: number, timeoutMs: number): Promise<H3Response> {
    const done = this.rawResults.get(streamId);
    if (done === undefined) return Promise.reject(new H3ClientError('H3C_PROTOCOL', `no raw stream ${streamId}`));
    const req = this.requests.get(streamId);
    if (req !== undefined && req.timer === undefined) {
      req.timer = setTimeout(() => this.finishRequest(req, new H3ClientError('H3C_TIMEOUT', `no response in ${timeoutMs} ms`)), timeoutMs);
    }
    return done;
  }

  /** RESET_STREAM (direction 1, SHUTDOWN_WRITE) or STOP_SENDING (0, SHUTDOWN_READ) with `code`, on any stream. */
  shutdownStream(streamId: number, direction: number, code: number): void {
    if (this.closed) return;
    try {
      this.conn.streamShutdown(streamId, direction, code);
    } catch {
      // not open, or already shut
    }
    this.flush();
  }

  private writeRawUni(streamId: number): void {
    const u = this.rawUni.get(streamId);
    if (u === undefined) return;
    while (u.out.length > 0) {
      const buf = u.out[0];
      let n: number | null;
      try {
        n = this.conn.streamSend(streamId, buf, u.out.length === 1 && u.fin);
      } catch (err) {
        if (quicErrorCode(err) === 'QUIC_DONE') return;
        this.rawUni.delete(streamId); // stopped by the peer, or over its stream limit: nothing more to send
        return;
      }
      if (n === null) return;
      if (n < buf.length) {
        u.out[0] = buf.subarray(n);
        return;
      }
      u.out.shift();
    }
    if (u.fin) this.rawUni.delete(streamId);
  }

  /** Closes with H3_NO_ERROR (RFC 9114 §5.2) without waiting for the draining period. */
  close(): void {
    if (this.closed) return;
    try {
      this.conn.close(true, H3_NO_ERROR, new Uint8Array(0));
    } catch {
      // already closing
    }
    this.flush();
    this.teardown('closed by client');
  }

  // ---------------------------------------------------------------------------------------------------

  private onDatagram(msg: Buffer): void {
    if (this.closed) return;
    try {
      // recv() decrypts in place; msg is ours alone.
      this.conn.recv(msg, { from: this.peer, to: this.local });
    } catch {
      // A packet quiche rejects (e.g. undecryptable after close) is dropped, as RFC 9000 §12.2 allows.
    }
    // One pass over streams, sends and the timer per burst of datagrams (libuv reads several per poll), not per
    // datagram: a 1 MiB response is ~800 datagrams.
    if (!this.processScheduled) {
      this.processScheduled = true;
      setImmediate(this.processBurst);
    }
  }

  private readonly processBurst = (): void => {
    this.processScheduled = false;
    if (!this.closed) this.afterInput();
  };

  private afterInput(): void {
    if (!this.established && this.conn.isEstablished()) {
      this.established = true;
      this.openControlStream();
      this.onEstablished?.();
      this.onEstablished = undefined;
    }
    if (this.established) {
      if (this.conn.isReadable()) this.readStreams();
      this.writePending();
    }
    this.flush();
    if (this.conn.isClosed()) this.onConnectionClosed();
  }

  private openControlStream(): void {
    if (this.controlStream === null) return;
    if (this.controlStream !== undefined) {
      this.conn.streamSend(CONTROL_STREAM_ID, this.controlStream, false);
      return;
    }
    const settings = encodeSettingsFrame([
      [SETTINGS_QPACK_MAX_TABLE_CAPACITY, 0],
      [SETTINGS_QPACK_BLOCKED_STREAMS, 0],
      [SETTINGS_MAX_FIELD_SECTION_SIZE, MAX_FIELD_SECTION],
    ]);
    const data = new Uint8Array(1 + settings.length);
    data[0] = UNI_CONTROL;
    data.set(settings, 1);
    // RFC 9114 §6.2.1: the control stream must never be closed, so no FIN.
    this.conn.streamSend(CONTROL_STREAM_ID, data, false);
  }

  private readStreams(): void {
    for (const id of this.conn.readable()) {
      if (this.requests.get(id)?.paused) continue;
      for (;;) {
        let r: [number, boolean] | null;
        try {
          r = this.conn.streamRecv(id, this.recvBuf);
        } catch (err) {
          const req = this.requests.get(id);
          const e = toQuicError(err);
          if (req) this.finishRequest(req, new H3ClientError('H3C_STREAM_RESET', `stream ${id}: ${e.code} (0x${(e.value ?? 0).toString(16)})`, e.value));
          break;
        }
        if (r === null) break;
        const [len, fin] = r;
        const chunk = this.recvBuf.subarray(0, len);
        if ((id & 0x3) === 0) this.onRequestStreamData(id, chunk, fin);
        else this.onPeerUniData(id, chunk);
        if (fin || len === 0) break;
      }
    }
  }

  private onRequestStreamData(id: number, chunk: Uint8Array, fin: boolean): void {
    const req = this.requests.get(id);
    if (!req) return;
    try {
      req.reader.push(chunk);
      for (let f = req.reader.next(); f !== null; f = req.reader.next()) {
        if (f.kind === 'headers') {
          const fields = this.decoder.decodeFieldSection(id, f.payload);
          if (fields === null) throw new H3ClientError('H3C_PROTOCOL', 'QPACK section blocked with a zero-capacity table');
          const status = fields.find(([n]) => n === ':status');
          // RFC 9114 §4.1: 1xx responses precede the final one; only the final status counts.
          if (status && Number(status[1]) >= 200) {
            req.status = Number(status[1]);
            req.headers = fields;
            req.onResponseHead?.(req.status, fields);
          } else if (status) req.interim.push(Number(status[1]));
        } else if (f.kind === 'data') {
          req.bytes += f.payload.length;
          if (req.chunks) req.chunks.push(Buffer.from(f.payload));
          if (req.onData && f.payload.length > 0) req.onData(Buffer.from(f.payload));
        }
      }
      if (fin) {
        req.reader.finish();
        if (req.status === 0) throw new H3ClientError('H3C_PROTOCOL', `stream ${id} ended without a response HEADERS frame`);
        this.finishRequest(req, undefined);
      }
    } catch (err) {
      this.finishRequest(req, err instanceof Error ? err : new Error(String(err)));
    }
  }

  private onPeerUniData(id: number, chunk: Uint8Array): void {
    let s = this.peerUni.get(id);
    let data = chunk;
    if (!s) {
      const type = readVarint(chunk, 0);
      if (type === VARINT_NEED_MORE) return; // a split type varint is too rare to handle in a bench client
      s = { type, reader: type === UNI_CONTROL ? new FrameReader(MAX_FIELD_SECTION) : undefined };
      this.peerUni.set(id, s);
      data = chunk.subarray(varintLength(chunk[0]));
    }
    if (s.type === UNI_CONTROL && s.reader) {
      s.reader.push(data);
      for (let f = s.reader.next(); f !== null; f = s.reader.next()) {
        // RFC 9114 §5.2: no new requests after GOAWAY; those in flight finish.
        if (f.kind === 'goaway') this.goaway = true;
        else if (f.kind === 'settings') this.peerSettings = new Map(f.settings);
      }
    } else if (s.type === UNI_QPACK_ENCODER) {
      this.decoder.feedEncoderStream(data);
    }
    // Decoder, push and reserved stream types: read and discarded (RFC 9114 §6.2: unknown types are ignored).
  }

  /** Writes as much of req.out as quiche accepts. false: the stream could not be opened (no stream credit). */
  private writeStream(req: PendingRequest, opening: boolean): boolean {
    while (req.out.length > 0) {
      const buf = req.out[0];
      const last = req.out.length === 1;
      let n: number | null;
      try {
        n = this.conn.streamSend(req.streamId, buf, last && req.fin);
      } catch (err) {
        if (opening && quicErrorCode(err) === 'QUIC_STREAM_LIMIT') return false;
        if (quicErrorCode(err) === 'QUIC_DONE') return true; // no capacity now: retried on the next input
        const e = toQuicError(err);
        this.finishRequest(req, new H3ClientError('H3C_STREAM_RESET', `stream ${req.streamId}: ${e.code}${e.value !== undefined ? ` (0x${e.value.toString(16)})` : ''}`, e.value));
        return true;
      }
      opening = false;
      if (n === null) return true;
      if (n < buf.length) {
        req.out[0] = buf.subarray(n);
        return true;
      }
      req.out.shift();
    }
    return true;
  }

  private writePending(): void {
    for (const req of this.requests.values()) if (req.out.length > 0) this.writeStream(req, false);
    for (const id of this.rawUni.keys()) this.writeRawUni(id);
    if (this.waiting.length > 0) {
      const w = this.waiting.splice(0, this.waiting.length);
      for (const start of w) start();
    }
  }

  private finishRequest(req: PendingRequest, err: Error | undefined): void {
    if (!this.requests.delete(req.streamId)) return;
    if (req.timer) clearTimeout(req.timer);
    if (err) {
      req.reject(err);
      return;
    }
    req.resolve({ status: req.status, headers: req.headers, interim: req.interim, bytes: req.bytes, body: req.chunks ? Buffer.concat(req.chunks) : undefined });
  }

  private flush(): void {
    if (this.closed) return;
    for (;;) {
      let r: ReturnType<QuicheConnection['send']>;
      try {
        r = this.conn.send(this.sendBuf);
      } catch {
        break;
      }
      if (r === null) break;
      // dgram may send later: each datagram gets its own copy of the shared buffer.
      this.sock.send(Buffer.from(this.sendBuf.subarray(0, r[0])));
    }
    this.armTimer();
  }

  private armTimer(): void {
    const ms = this.conn.timeout();
    if (ms === null) {
      if (this.timer) clearTimeout(this.timer);
      this.timer = undefined;
      return;
    }
    // Keep the armed timer when the deadline moved by less than a millisecond (timeout() is whole ms anyway).
    const at = performance.now() + ms;
    if (this.timer && Math.abs(at - this.timerAt) < 1) return;
    if (this.timer) clearTimeout(this.timer);
    this.timerAt = at;
    this.timer = setTimeout(this.onTimer, ms);
  }

  private readonly onTimer = (): void => {
    this.timer = undefined;
    if (this.closed) return;
    this.conn.onTimeout();
    this.afterInput();
  };

  private onConnectionClosed(): void {
    const peer = this.conn.peerError();
    const e = peer ?? this.conn.localError();
    if (e) this.closeError = { isApp: e.isApp, errorCode: e.errorCode, reason: Buffer.from(e.reason).toString(), byPeer: peer !== null };
    const why = this.conn.isTimedOut() ? 'idle timeout' : e ? `${e.isApp ? 'application' : 'transport'} error 0x${e.errorCode.toString(16)} ${Buffer.from(e.reason).toString()}` : 'closed';
    this.fail(new H3ClientError('H3C_CLOSED', `connection closed: ${why}`, e?.isApp ? e.errorCode : undefined));
  }

  private fail(err: Error): void {
    if (this.closed) return;
    this.closeReason = err.message;
    const onFail = this.onFail;
    this.teardown(err.message);
    for (const req of [...this.requests.values()]) this.finishRequest(req, err);
    for (const start of this.waiting.splice(0, this.waiting.length)) start();
    onFail?.(err);
  }

  private teardown(reason: string): void {
    this.closed = true;
    this.closeReason ||= reason;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    // A tick later, so the CONNECTION_CLOSE datagram just handed to dgram leaves first.
    setImmediate(() => {
      try {
        this.sock.close();
      } catch {
        // already closed
      }
    });
  }
}

/** One request on a fresh connection, closed afterwards (handshake + request + close). */
export async function h3Fetch(opts: H3ConnectOptions & H3RequestOptions): Promise<H3Response> {
  const c = await H3Connection.connect(opts);
  try {
    return await c.request(opts);
  } finally {
    c.close();
  }
}
