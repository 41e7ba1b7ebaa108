// server.maxBodySize: a declared length over the limit is refused before anything is forwarded (413);
// a body without a declared length is counted as it streams and fails with 413 past the limit.
import { Transform, type Readable } from 'node:stream';
import type { Config } from '../../config/types.ts';
import { ClientError } from '../../shared/client-errors.ts';
import type { Exchange } from '../exchange.ts';
import type { Phase } from '../phase.ts';

function limitBody(body: Readable, max: number): Readable {
  let seen = 0;
  const limiter = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      seen += chunk.length;
      if (seen > max) cb(new ClientError('QUICLB_BODY_TOO_LARGE', `request body exceeds server.maxBodySize (${max} bytes)`));
      else cb(null, chunk);
    },
  });
  body.on('error', (err) => limiter.destroy(err));
  return body.pipe(limiter);
}

export function bodyLimitPhase(config: Config): Phase | undefined {
  const max = config.server.maxBodySize;
  if (max <= 0) return undefined;
  return {
    name: 'body-limit',
    request(ex: Exchange): boolean {
      const body = ex.req.body;
      if (body === null) return false;
      let declared = -1;
      for (const [name, value] of ex.req.headers) if (name === 'content-length') declared = Number(value);
      if (declared > max) {
        body.resume();
        ex.answer(413, `Request body of ${declared} bytes exceeds the limit of ${max} bytes.\n`, undefined, 'body-limit');
        return true;
      }
      if (declared < 0) ex.body = limitBody(body, max);
      return false;
    },
  };
}
