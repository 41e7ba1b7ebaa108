// Small helpers every admin endpoint answers through: whole bodies with their length, HEAD without
// content, and the few short request bodies the dashboard reads (its login form).
import type { FrontRequest, FrontResponse, HeaderList } from '../shared/http-types.ts';

/** First value of a request field (lowercase name). */
export function header(req: FrontRequest, name: string): string | undefined {
  for (const [k, v] of req.headers) if (k === name) return v;
  return undefined;
}

export function send(req: FrontRequest, res: FrontResponse, status: number, contentType: string, body: string, extra: HeaderList = []): void {
  if (res.headersSent) return;
  const bytes = Buffer.from(body, 'utf8');
  const headers: HeaderList = [
    ['content-type', contentType],
    ['cache-control', 'no-store'],
    ['content-length', String(bytes.length)],
    ...extra,
  ];
  const sink = res.respond(status, headers);
  // RFC 9110 §9.3.2: HEAD gets the GET headers and no content.
  sink.end(req.method === 'HEAD' ? undefined : bytes);
}

export function sendJson(req: FrontRequest, res: FrontResponse, status: number, value: unknown, extra: HeaderList = []): void {
  send(req, res, status, 'application/json', JSON.stringify(value) + '\n', extra);
}

export const BODY_TOO_LARGE_CODE = 'QUICLB_ADMIN_BODY_TOO_LARGE';

/**
 * The whole request body, at most `limit` bytes (the rest is drained, and the promise rejects with
 * code QUICLB_ADMIN_BODY_TOO_LARGE); an empty buffer when there is none. The frontend's readTimeout
 * bounds how long a slow client can make this take.
 */
export function readSmallBody(req: FrontRequest, limit: number): Promise<Buffer> {
  const body = req.body;
  if (body === null) return Promise.resolve(Buffer.alloc(0));
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let tooLarge = false;
    body.on('data', (chunk: Buffer) => {
      if (tooLarge) return;
      size += chunk.length;
      if (size > limit) {
        tooLarge = true;
        chunks.length = 0;
        // Keep reading (and dropping) so the connection stays usable for the answer.
        reject(Object.assign(new Error(`request body over ${limit} bytes`), { code: BODY_TOO_LARGE_CODE }));
        return;
      }
      chunks.push(chunk);
    });
    body.once('end', () => {
      if (!tooLarge) resolve(Buffer.concat(chunks));
    });
    body.once('error', (err) => {
      if (!tooLarge) reject(err);
    });
  });
}
