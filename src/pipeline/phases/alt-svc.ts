// Response filter: advertise HTTP/3 (RFC 7838 Alt-Svc) on every answer over TCP when QUIC is on.
import type { Config } from '../../config/types.ts';
import type { Exchange } from '../exchange.ts';
import type { Phase, ResponseHead } from '../phase.ts';

export function altSvcPhase(config: Config): Phase | undefined {
  if (!config.quic.enabled) return undefined;
  const value = `h3=":${config.server.httpsPort}"; ma=86400`;
  return {
    name: 'alt-svc',
    response(ex: Exchange, head: ResponseHead): void {
      if (ex.req.protocol !== 'HTTP/3') head.headers.push(['alt-svc', value]);
    },
  };
}
