// DEMO ONLY: two tiny HTTP backends started beside quiclb by `npm start` / `quiclb start --demo`, so a
// newcomer sees balancing, stickiness and health without a Moodle site. Never used in production.
import http from 'node:http';
import { randomUUID } from 'node:crypto';
import type { AddressInfo } from 'node:net';

export interface DemoBackend {
  id: string;
  port: number;
  close(): Promise<void>;
}

function page(id: string, visits: number, req: http.IncomingMessage): string {
  const proto = req.headers['x-forwarded-proto'] ?? 'http';
  return `<!doctype html><html><head><meta charset="utf-8"><title>quiclb demo (${id})</title></head>
<body style="font-family:sans-serif;max-width:40em;margin:2em auto">
<h1>quiclb demo backend: ${id}</h1>
<p>This page comes from a <strong>demo backend</strong> that quiclb started beside itself. Replace it with your
Moodle servers in <code>loadBalancer.backendServers</code>.</p>
<p>Visits in this session on this backend: <strong id="visits">${visits}</strong> (reload: you stay on ${id}).</p>
<p>Client as seen through quiclb: ${req.headers['x-forwarded-for'] ?? req.socket.remoteAddress} over ${proto}.</p>
</body></html>\n`;
}

export async function startDemoBackend(id: string, port: number, host = '127.0.0.1'): Promise<DemoBackend> {
  const sessions = new Map<string, number>();
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://demo');
    if (url.pathname === '/admin/cli/healthcheck.php') {
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"status":"healthy"}\n');
      return;
    }
    const cookie = /(?:^|;\s*)MoodleSession=([^;]+)/.exec(req.headers.cookie ?? '')?.[1];
    const sid = cookie && sessions.has(cookie) ? cookie : randomUUID();
    const visits = (sessions.get(sid) ?? 0) + 1;
    if (sessions.size > 10_000) sessions.clear(); // demo: bounded
    sessions.set(sid, visits);
    const headers: http.OutgoingHttpHeaders = { 'content-type': 'text/html; charset=utf-8', 'x-demo-backend': id };
    if (sid !== cookie) headers['set-cookie'] = `MoodleSession=${sid}; Path=/; HttpOnly`;
    req.resume();
    res.writeHead(200, headers).end(page(id, visits, req));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  return {
    id,
    port: (server.address() as AddressInfo).port,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
