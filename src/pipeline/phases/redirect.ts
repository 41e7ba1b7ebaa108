// server.redirectHttpToHttps: plain-HTTP requests get 308 to the same target on the HTTPS port.
import type { Config } from '../../config/types.ts';
import type { Exchange } from '../exchange.ts';
import type { Phase } from '../phase.ts';

export function redirectPhase(config: Config): Phase | undefined {
  if (!config.server.redirectHttpToHttps) return undefined;
  const httpsPort = config.server.httpsPort;
  return {
    name: 'redirect',
    request(ex: Exchange): boolean {
      const req = ex.req;
      if (req.scheme !== 'http') return false;
      const host = req.authority.replace(/:\d+$/, '') || 'localhost';
      const target = `https://${host}${httpsPort === 443 ? '' : `:${httpsPort}`}${req.path === '*' ? '/' : req.path}`;
      req.body?.resume();
      ex.answer(308, `Moved to ${target}\n`, [['location', target]], 'redirect');
      return true;
    },
  };
}
