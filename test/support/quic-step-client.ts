// A QUIC client driven step by step (quiche's sans-IO connection over one UDP socket), for tests that must act
// between packets: hold the Initial that answers a Retry while the server changes its keys, resume a TLS
// session (`session`), or send into a connection whose shard died and watch for the stateless reset.
// No HTTP/3: a completed handshake (or a closed connection) is what these tests look at.
import dgram from 'node:dgram';
import { randomBytes } from 'node:crypto';
import { loadQuiche, type HostPort, type QuicheConfig, type QuicheConnection } from '../../src/quic/quiche.ts';

let config: QuicheConfig | undefined;

function clientConfig(): QuicheConfig {
  if (config) return config;
  const c = new (loadQuiche().Config)();
  c.verifyPeer(false);
  c.setApplicationProtos(['h3']);
  c.setMaxIdleTimeout(30_000);
  c.setMaxRecvUdpPayloadSize(1350);
  c.setMaxSendUdpPayloadSize(1350);
  c.setInitialMaxData(1 << 20);
  c.setInitialMaxStreamDataBidiLocal(1 << 16);
  c.setInitialMaxStreamDataUni(1 << 16);
  c.setInitialMaxStreamsUni(16);
  c.setDisableActiveMigration(true);
  config = c;
  return c;
}

/** RFC 9000 §17.2.5: a long header (0b1...), fixed bit, type 0b11 (QUIC v1). */
const isRetry = (d: Buffer): boolean => d.length > 0 && (d[0] & 0xf0) === 0xf0;

export class QuicStepClient {
  readonly conn: QuicheConnection;
  /** Retry packets received. */
  retries = 0;
  private readonly sock: dgram.Socket;
  private readonly local: HostPort;
  private readonly peer: HostPort;
  private readonly queue: Buffer[] = [];
  private readonly buf = Buffer.allocUnsafe(1500);
  private wake: (() => void) | undefined;
  private timeoutAt = Infinity;

  private constructor(sock: dgram.Socket, port: number, session: Uint8Array | undefined) {
    this.sock = sock;
    this.local = { host: '127.0.0.1', port: sock.address().port };
    this.peer = { host: '127.0.0.1', port };
    this.conn = loadQuiche().Connection.connect('localhost', randomBytes(16), this.local, this.peer, clientConfig());
    if (session) this.conn.setSession(session);
    sock.on('message', (m) => {
      this.queue.push(m);
      this.wake?.();
    });
  }

  static async open(port: number, session?: Uint8Array): Promise<QuicStepClient> {
    const sock = dgram.createSocket('udp4');
    await new Promise<void>((resolve) => sock.bind(0, '127.0.0.1', () => resolve()));
    return new QuicStepClient(sock, port, session);
  }

  /** Sends everything quiche has to send now. */
  flush(): void {
    for (;;) {
      let r;
      try {
        r = this.conn.send(this.buf);
      } catch {
        return;
      }
      if (r === null) break;
      this.sock.send(Buffer.from(this.buf.subarray(0, r[0])), this.peer.port, this.peer.host);
    }
    const t = this.conn.timeout();
    this.timeoutAt = t === null ? Infinity : performance.now() + t;
  }

  /**
   * Sends, receives and runs quiche's timers until `done()` or `timeoutMs`; true when done. With `hold`, after
   * what quiche has to send at the start, nothing more is sent: what arrives is only fed to quiche (so the
   * Initial a Retry asks for waits for a later run).
   */
  async run(done: () => boolean, timeoutMs: number, opts: { hold?: boolean } = {}): Promise<boolean> {
    const deadline = performance.now() + timeoutMs;
    this.flush();
    while (!done()) {
      const now = performance.now();
      if (now >= deadline) return false;
      const wait = Math.max(1, Math.min(deadline, opts.hold ? Infinity : this.timeoutAt) - now);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, wait);
        this.wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.wake = undefined;
      for (let d = this.queue.shift(); d !== undefined; d = this.queue.shift()) {
        if (isRetry(d)) this.retries++;
        try {
          this.conn.recv(d, { from: this.peer, to: this.local });
        } catch {
          // quiche drops what it cannot use (Done).
        }
      }
      if (opts.hold) continue;
      if (performance.now() >= this.timeoutAt) this.conn.onTimeout();
      this.flush();
    }
    return true;
  }

  /** The handshake: true when established within `timeoutMs`. */
  handshake(timeoutMs = 5000): Promise<boolean> {
    return this.run(() => this.conn.isEstablished() || this.conn.isClosed(), timeoutMs).then(() => this.conn.isEstablished());
  }

  /** After the handshake: the TLS session (with the server's ticket) once it arrived, for a later `open`. */
  async session(timeoutMs = 3000): Promise<Uint8Array | null> {
    await this.run(() => this.conn.session() !== null, timeoutMs);
    return this.conn.session();
  }

  close(): void {
    try {
      this.conn.close(true, 0x100, new Uint8Array(0));
      this.flush();
    } catch {
      // already closed
    }
    this.sock.close();
  }
}
