// pino everywhere. JSON lines go to fd 1 through a LineBatcher: lines written in one event-loop turn leave in
// one write(2), each write at most PIPE_BUF bytes and ending on a line boundary, so the lines of the primary
// and of every shard thread interleave whole (writes of up to PIPE_BUF bytes to a pipe are atomic) and the
// access log costs one syscall per batch instead of one per request. "pretty" goes through pino-pretty
// in-thread for humans.
import { writeSync } from 'node:fs';
import pino from 'pino';
import pretty from 'pino-pretty';

export type Logger = pino.Logger;

/** Linux PIPE_BUF: writes up to this size to a pipe are never interleaved with other writers. */
const PIPE_BUF = 4096;

export class LineBatcher {
  private readonly fd: number;
  private buffered = '';
  private scheduled = false;
  private readonly flushSoon = (): void => {
    this.scheduled = false;
    this.flush();
  };

  constructor(fd: number) {
    this.fd = fd;
  }

  /** pino's destination interface: one serialised line (ending in \n) per call. */
  write(line: string): boolean {
    if (this.buffered.length + line.length > PIPE_BUF) this.flush();
    if (line.length >= PIPE_BUF) {
      this.writeOut(line);
      return true;
    }
    this.buffered += line;
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(this.flushSoon);
    }
    return true;
  }

  flush(): void {
    if (this.buffered === '') return;
    const out = this.buffered;
    this.buffered = '';
    this.writeOut(out);
  }

  /** pino calls flushSync() before a fatal exit. */
  flushSync(): void {
    this.flush();
  }

  private writeOut(text: string): void {
    try {
      writeSync(this.fd, text);
    } catch {
      // stdout closed or full (EAGAIN on a non-blocking pipe): drop the lines rather than block or crash
    }
  }
}

const batchers = new Map<number, LineBatcher>();

/** The one batcher per fd in this thread; flush() it before the thread exits. */
export function lineBatcher(fd = 1): LineBatcher {
  let b = batchers.get(fd);
  if (b === undefined) {
    b = new LineBatcher(fd);
    batchers.set(fd, b);
    process.once('exit', () => b!.flush());
  }
  return b;
}

export function createLogger(cfg: { level: string; format: 'json' | 'pretty' }, bindings: Record<string, unknown> = {}): Logger {
  const stream =
    cfg.format === 'pretty'
      ? pretty({ colorize: process.stdout.isTTY ?? false, sync: true, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname' })
      : lineBatcher(1);
  return pino({ level: cfg.level, base: { ...bindings } }, stream);
}
