// "node15": the 15-line Node proxy of the per-request-cost issue, the bench's reference for what plain Node
// costs per request. One process, one thread: a node:http server (plain HTTP/1.1) and an http2 secure server
// with allowHTTP1 (HTTP/1.1 over TLS and HTTP/2), both with the same handler, which alternates between two
// undici Pools (32 connections each), forwards method, path and Host, copies status and headers with
// writeHead and writes the body with `for await`. Nothing else: no header rewriting beyond dropping the
// hop-by-hop fields (HTTP/2 refuses them, RFC 9113 §8.2.2), no backpressure, no timeouts, no logging.
//   node bench/node15.ts PLAIN_PORT TLS_PORT CERT_FILE KEY_FILE BACKEND_HOST:PORT BACKEND_HOST:PORT
import http from 'node:http';
import http2 from 'node:http2';
import { readFileSync } from 'node:fs';
import { Pool } from 'undici';

type Req = http.IncomingMessage | http2.Http2ServerRequest;
// Http2ServerResponse has the same writeHead/write/end/destroy; one type keeps the handler one function.
type Res = http.ServerResponse;

const [plain, tls, cert, key, ...backends] = process.argv.slice(2);
const pools = backends.map((b) => new Pool(`http://${b}`, { connections: 32 }));
const HOP_BY_HOP = ['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade'];
let next = 0;

async function handle(req: Req, res: Res): Promise<void> {
  try {
    const host = req.headers.host ?? req.headers[':authority'];
    const body = req.method === 'GET' || req.method === 'HEAD' ? undefined : req;
    const up = await pools[next++ % pools.length].request({ method: req.method as 'GET', path: req.url!, headers: { host }, body });
    for (const h of HOP_BY_HOP) delete up.headers[h];
    res.writeHead(up.statusCode, up.headers as http.OutgoingHttpHeaders);
    for await (const chunk of up.body) res.write(chunk);
    res.end();
  } catch {
    res.destroy();
  }
}

http.createServer(handle).listen(Number(plain), '127.0.0.1');
http2.createSecureServer({ allowHTTP1: true, cert: readFileSync(cert), key: readFileSync(key) }, (req, res) => handle(req, res as unknown as Res)).listen(Number(tls), '127.0.0.1');
