// A node:http backend that answers with its own id (body and `x-backend`) and records when each request
// arrived, so a test can tell which backend served what and whether any request reached it after a moment
// (a reload). `/slow?ms=N` answers after N ms (an in-flight request held across a reload).
import { createServer, type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

export interface Arrival {
  /** performance.now() of the test process when the request head arrived. */
  at: number;
  /** Date.now() then (to compare with the "time" of quiclb's log lines). */
  wall: number;
  path: string;
}

export interface IdBackend {
  id: string;
  port: number;
  arrivals: Arrival[];
  /** Requests answered completely. */
  completed: number;
  close(): Promise<void>;
}

export async function startIdBackend(id: string): Promise<IdBackend> {
  const sockets = new Set<Socket>();
  const backend: IdBackend = {
    id,
    port: 0,
    arrivals: [],
    completed: 0,
    close: async () => undefined,
  };
  const server: Server = createServer((req, res) => {
    const path = req.url ?? '/';
    backend.arrivals.push({ at: performance.now(), wall: Date.now(), path });
    const answer = (): void => {
      const body = `${id}\n`;
      res.writeHead(200, { 'content-type': 'text/plain', 'content-length': String(body.length), 'x-backend': id });
      res.end(body, () => backend.completed++);
    };
    req.resume();
    const slow = /^\/slow\?ms=(\d+)/.exec(path);
    if (slow !== null) setTimeout(answer, Number(slow[1]));
    else answer();
  });
  server.keepAliveTimeout = 60_000;
  server.on('connection', (s) => {
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  backend.port = (server.address() as AddressInfo).port;
  backend.close = async () => {
    for (const s of sockets) s.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  };
  return backend;
}
