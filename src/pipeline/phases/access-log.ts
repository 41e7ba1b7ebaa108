// One access-log line per request, once it is answered (logging.accessLog).
import type { Config } from '../../config/types.ts';
import type { Logger } from '../../shared/logger.ts';
import type { Exchange } from '../exchange.ts';
import type { Phase } from '../phase.ts';

export function accessLogPhase(config: Config, logger: Logger): Phase | undefined {
  if (!config.logging.accessLog) return undefined;
  return {
    name: 'access-log',
    done(ex: Exchange): void {
      const req = ex.req;
      logger.info(
        {
          protocol: req.protocol,
          method: req.method,
          path: req.path,
          status: ex.status,
          backend: ex.backend?.id ?? (ex.answeredBy === 'admin' ? 'quiclb-admin' : undefined),
          attempts: ex.attempts || undefined,
          cache: ex.cache?.outcome,
          client: req.remoteAddress,
          durationMs: Math.round((performance.now() - ex.started) * 100) / 100,
        },
        'request',
      );
    },
  };
}
