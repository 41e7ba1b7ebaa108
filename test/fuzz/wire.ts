// Plays one byte-stream fuzz case (HTTP/1.1 or HTTP/2) on a fresh TCP connection — plain, or TLS with a given
// ALPN — and collects what came back. A case is over when the server closes, when nothing has arrived for
// QUIET_MS after the last write (a kept-alive connection, or a request quiclb still waits to see the rest of),
// or after MAX_MS.
import net from 'node:net';
import tls from 'node:tls';
import { setTimeout as sleep } from 'node:timers/promises';

export interface WireCase {
  /** The TCP (or TLS record) writes, in order. */
  writes: Buffer[];
  /** Milliseconds to wait before each write after the first (a slow client); empty = back to back. */
  gapsMs: number[];
  /** After the writes: 'end' half-closes (FIN), 'reset' destroys the socket (RST), 'wait' reads until done. */
  finish: 'wait' | 'end' | 'reset';
  /** Which generator paths produced it, for the outcome table. */
  label: string;
}

export interface WireResult {
  /** The first KEEP bytes received. */
  data: Buffer;
  bytes: number;
  /** server-close: FIN; server-reset: an error such as ECONNRESET; open: still open at the end; client-reset: we cut it. */
  end: 'server-close' | 'server-reset' | 'open' | 'client-reset' | 'connect-failed' | 'no-handshake';
  /** The ALPN protocol the TLS handshake chose (TLS only; undefined when the handshake never finished). */
  alpn?: string | false;
  ms: number;
}

const QUIET_MS = 600;
const MAX_MS = 8000;
const KEEP = 128 * 1024;

export function runWire(port: number, c: WireCase, alpn?: string): Promise<WireResult> {
  const started = Date.now();
  return new Promise<WireResult>((resolve) => {
    const kept: Buffer[] = [];
    let keptBytes = 0;
    let bytes = 0;
    let end: WireResult['end'] = 'open';
    let lastActivity = Date.now();
    let writesDone = false;
    let settled = false;
    let connected = false;
    // TLS runs over a TCP socket of our own, so that 'reset' can send a TCP RST under it.
    const tcp = net.connect(port, '127.0.0.1');
    const socket: net.Socket = alpn !== undefined ? tls.connect({ socket: tcp, rejectUnauthorized: false, ALPNProtocols: [alpn], servername: 'localhost' }) : tcp;
    if (socket !== tcp) tcp.on('error', () => undefined);
    const finish = (): void => {
      if (settled) return;
      settled = true;
      clearInterval(watch);
      const negotiated = alpn !== undefined && connected ? ((socket as tls.TLSSocket).alpnProtocol ?? false) : undefined;
      tcp.destroy();
      if (!connected && end !== 'connect-failed') end = alpn !== undefined ? 'no-handshake' : 'connect-failed';
      socket.destroy();
      resolve({ data: Buffer.concat(kept), bytes, end, alpn: negotiated, ms: Date.now() - started });
    };
    const watch = setInterval(() => {
      const now = Date.now();
      if (now - started > MAX_MS || (writesDone && now - lastActivity > QUIET_MS)) finish();
    }, 50);
    socket.on('data', (chunk: Buffer) => {
      bytes += chunk.length;
      lastActivity = Date.now();
      if (keptBytes < KEEP) {
        kept.push(chunk);
        keptBytes += chunk.length;
      }
    });
    socket.on('error', (err: NodeJS.ErrnoException) => {
      if (end === 'open') end = err.code === 'ECONNREFUSED' ? 'connect-failed' : 'server-reset';
    });
    socket.on('end', () => {
      if (end === 'open') end = 'server-close';
    });
    socket.on('close', () => {
      if (end === 'open') end = 'server-close';
      finish();
    });
    socket.once(alpn !== undefined ? 'secureConnect' : 'connect', () => {
      connected = true;
      void (async () => {
        for (let i = 0; i < c.writes.length && !socket.destroyed; i++) {
          if (i > 0 && c.gapsMs.length > 0) await sleep(c.gapsMs[i - 1]);
          // A write into a socket quiclb already closed is the client's problem only.
          if (!socket.destroyed) socket.write(c.writes[i]);
        }
        lastActivity = Date.now();
        writesDone = true;
        if (c.finish === 'end' && !socket.destroyed) socket.end();
        if (c.finish === 'reset') {
          await sleep(c.writes.length % 7);
          if (end === 'open') end = 'client-reset';
          try {
            tcp.resetAndDestroy();
          } catch {
            socket.destroy();
          }
          finish();
        }
      })();
    });
  });
}
