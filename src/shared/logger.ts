// pino everywhere. Worker shards write synchronously to fd 1 (pino.destination with sync) so their lines
// interleave whole with the primary's; "pretty" goes through pino-pretty in-thread for humans.
import pino from 'pino';
import pretty from 'pino-pretty';

export type Logger = pino.Logger;

export function createLogger(cfg: { level: string; format: 'json' | 'pretty' }, bindings: Record<string, unknown> = {}): Logger {
  const stream =
    cfg.format === 'pretty'
      ? pretty({ colorize: process.stdout.isTTY ?? false, sync: true, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname' })
      : pino.destination({ dest: 1, sync: true });
  return pino({ level: cfg.level, base: { ...bindings } }, stream);
}
