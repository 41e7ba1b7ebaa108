// One open WebSocket: the client's byte stream (an HTTP/1.1 socket, an HTTP/2 stream, an HTTP/3 stream) and
// the backend's upgraded socket, piped both ways with backpressure (a side that cannot take more pauses the
// other), closed together, and closed by quiclb itself after websocket.idleTimeout without a byte either way
// or when the shard shuts down.
//
// quiclb's own close is a WebSocket close frame (RFC 6455 §5.5.1) to each peer, so both see a clean close
// with a status code instead of a dropped connection. A frame may only go in between two frames, so each
// direction's frame boundaries are tracked (FrameTracker: headers only, payloads are skipped, nothing is
// unmasked); a direction in the middle of a frame gets its close frame right after that frame ends. Toward
// the backend quiclb speaks as a client and masks its frame; toward the client as a server, unmasked
// (RFC 6455 §5.1). After its close frame a direction forwards nothing more: the peer's reply and anything
// after it are dropped (§5.5.1: no data after a close frame).
import type { Duplex } from 'node:stream';
import type { Logger } from '../shared/logger.ts';
import { encodeCloseFrame, FrameTracker } from './websocket-frames.ts';

/** How long a side may take to close after the other closed (or after quiclb's close frames) before it is destroyed. */
export const CLOSE_GRACE_MS = 5000;

export interface TunnelOptions {
  /** No byte either way for this long closes the tunnel (with close frames 1001). 0: no limit. */
  idleTimeoutMs: number;
  logger: Logger;
  /** Runs once, when both sides are closed. Must not throw. */
  onClose(tunnel: Tunnel): void;
}

/** One direction of the tunnel. */
class Direction {
  readonly from: Duplex;
  readonly to: Duplex;
  /** Frames toward `to` must be masked (to is the backend: quiclb writes there as a client). */
  readonly masked: boolean;
  readonly tracker = new FrameTracker();
  /** quiclb's close frame, waiting for the frame in progress to end. */
  pendingClose: Buffer | undefined;
  /** Nothing more is forwarded this way (quiclb closed it, or `from` ended). */
  done = false;

  constructor(from: Duplex, to: Duplex, masked: boolean) {
    this.from = from;
    this.to = to;
    this.masked = masked;
  }
}

export class Tunnel {
  readonly client: Duplex;
  readonly backend: Duplex;
  private readonly opts: TunnelOptions;
  private readonly up: Direction;
  private readonly down: Direction;
  private lastActivity = performance.now();
  private idleTimer: NodeJS.Timeout | undefined;
  private killTimer: NodeJS.Timeout | undefined;
  private killAt = Infinity;
  private closing = false;
  private clientClosed = false;
  private backendClosed = false;
  private finished = false;

  constructor(client: Duplex, backend: Duplex, opts: TunnelOptions) {
    this.client = client;
    this.backend = backend;
    this.opts = opts;
    this.up = new Direction(client, backend, true);
    this.down = new Direction(backend, client, false);
    for (const d of [this.up, this.down]) {
      d.from.on('data', (chunk: Buffer) => this.guard(() => this.forward(d, chunk)));
      d.from.on('end', () => this.guard(() => this.ended(d)));
      d.to.on('drain', () => this.guard(() => d.from.resume()));
    }
    client.on('error', (err: Error) => this.failed('client', err));
    backend.on('error', (err: Error) => this.failed('backend', err));
    client.on('close', () => this.guard(() => this.sideClosed('client')));
    backend.on('close', () => this.guard(() => this.sideClosed('backend')));
    if (opts.idleTimeoutMs > 0) this.idleTimer = setTimeout(onIdleTimer, opts.idleTimeoutMs, this);
    // A side that went away before the tunnel was built emits no 'close' any more.
    if (client.destroyed) this.sideClosed('client');
    if (backend.destroyed) this.sideClosed('backend');
    client.resume();
    backend.resume();
  }

  /** True once both sides are closed. */
  get isFinished(): boolean {
    return this.finished;
  }

  /**
   * Closes the tunnel the WebSocket way: a close frame with `code` to each peer (at the next frame boundary
   * of its direction), then the end of each stream; whatever is still open `graceMs` later is destroyed.
   */
  goAway(code: number, reason: string, graceMs: number): void {
    if (this.closing || this.finished) return;
    this.closing = true;
    for (const d of [this.up, this.down]) {
      if (d.done) continue;
      d.pendingClose = encodeCloseFrame(code, reason, d.masked);
      if (d.tracker.atBoundary) this.sendClose(d);
      else d.from.resume(); // the frame in progress must be able to finish
    }
    this.armKill(graceMs);
  }

  /** Destroys both sides now. */
  destroy(): void {
    this.client.destroy();
    this.backend.destroy();
  }

  /** Checks the idle deadline (called by its timer). */
  checkIdle(): void {
    this.idleTimer = undefined;
    if (this.finished || this.closing) return;
    const idleFor = performance.now() - this.lastActivity;
    const limit = this.opts.idleTimeoutMs;
    if (idleFor < limit) {
      this.idleTimer = setTimeout(onIdleTimer, Math.ceil(limit - idleFor), this);
      return;
    }
    this.opts.logger.debug({ idleTimeoutMs: limit }, 'WebSocket idle: closing it with close frames (1001)');
    this.goAway(1001, 'idle timeout', CLOSE_GRACE_MS);
  }

  // ---- internals ----

  private forward(d: Direction, chunk: Buffer): void {
    this.lastActivity = performance.now();
    if (d.done || d.to.writableEnded || d.to.destroyed) return;
    let out = chunk;
    if (d.pendingClose !== undefined) {
      const k = d.tracker.advance(chunk, true);
      if (d.tracker.atBoundary) {
        if (k > 0) d.to.write(chunk.subarray(0, k));
        this.sendClose(d);
        return;
      }
      out = chunk.subarray(0, k);
    } else {
      d.tracker.advance(chunk);
    }
    if (!d.to.write(out)) d.from.pause();
  }

  private sendClose(d: Direction): void {
    const frame = d.pendingClose!;
    d.pendingClose = undefined;
    d.done = true;
    if (!d.to.writableEnded && !d.to.destroyed) d.to.write(frame);
    // Keep reading: the peer's own close frame (dropped) and its end must be able to arrive.
    d.from.resume();
    // The streams end only once both close frames are out: a peer that took our close as the end of the
    // connection and ended its own side could otherwise cut off the frame it is sending, and with it the
    // close frame the other peer is still owed (RFC 6455 §5.5.1 lets it finish its message first).
    if (this.up.done && this.down.done) {
      for (const side of [this.client, this.backend]) if (!side.writableEnded && !side.destroyed) side.end();
    }
  }

  /** `from` sent its last byte: the half-close passes on (the other direction may still carry data). */
  private ended(d: Direction): void {
    d.pendingClose = undefined;
    if (d.done) return;
    d.done = true;
    if (!d.to.writableEnded && !d.to.destroyed) d.to.end();
  }

  private sideClosed(side: 'client' | 'backend'): void {
    if (side === 'client') {
      if (this.clientClosed) return;
      this.clientClosed = true;
    } else {
      if (this.backendClosed) return;
      this.backendClosed = true;
    }
    if (this.clientClosed && this.backendClosed) {
      this.finish();
      return;
    }
    // One side is gone: the other gets its end (after what is queued for it) and a little time to close.
    const other = side === 'client' ? this.backend : this.client;
    if (!other.writableEnded && !other.destroyed) other.end();
    this.armKill(CLOSE_GRACE_MS);
  }

  private failed(side: 'client' | 'backend', err: Error): void {
    this.opts.logger.debug({ side, err: err.message }, 'WebSocket tunnel side failed; closing both');
    this.destroy();
  }

  private finish(): void {
    if (this.finished) return;
    this.finished = true;
    if (this.idleTimer !== undefined) clearTimeout(this.idleTimer);
    if (this.killTimer !== undefined) clearTimeout(this.killTimer);
    this.idleTimer = undefined;
    this.killTimer = undefined;
    try {
      this.opts.onClose(this);
    } catch (err) {
      this.opts.logger.error({ err }, 'WebSocket tunnel close handler threw');
    }
  }

  private armKill(ms: number): void {
    if (this.finished) return;
    const at = performance.now() + ms;
    if (at >= this.killAt) return; // only ever brought forward
    if (this.killTimer !== undefined) clearTimeout(this.killTimer);
    this.killAt = at;
    this.killTimer = setTimeout(onKillTimer, ms, this);
  }

  /** Every stream callback runs through here: a bug costs this tunnel, never the shard. */
  private guard(fn: () => void): void {
    try {
      fn();
    } catch (err) {
      this.opts.logger.error({ err }, 'WebSocket tunnel handler threw; closing it');
      try {
        this.destroy();
      } catch {
        // both sides are gone already
      }
    }
  }
}

function onIdleTimer(t: Tunnel): void {
  try {
    t.checkIdle();
  } catch {
    t.destroy();
  }
}

function onKillTimer(t: Tunnel): void {
  try {
    if (!t.isFinished) t.destroy();
  } catch {
    // nothing left to close
  }
}
