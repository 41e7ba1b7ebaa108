// A real node:http origin on 127.0.0.1 for the cache tests: every request is recorded, the test's handler answers.
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface OriginRequest {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
}

export interface Origin {
  url: string;
  requests: OriginRequest[];
  /** Requests for `path` so far. */
  count(path: string): number;
  close(): Promise<void>;
}

export async function startOrigin(handler: (req: IncomingMessage, res: ServerResponse, n: number) => void): Promise<Origin> {
  const requests: OriginRequest[] = [];
  const server = createServer((req, res) => {
    requests.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers });
    handler(req, res, requests.filter((r) => r.url === req.url).length);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    requests,
    count: (path) => requests.filter((r) => r.url === path).length,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}
