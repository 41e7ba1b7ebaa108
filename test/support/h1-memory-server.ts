// A bare HTTP/1.1 frontend (src/tcp/h1) answering "ok", for the connection-memory test: run with --expose-gc,
// it collects garbage every 200 ms so that RSS follows what is really retained. Prints its port.
import net from 'node:net';
import pino from 'pino';
import { H1Frontend } from '../../src/tcp/h1/frontend.ts';
import { frontendLimits } from '../../src/config/limits.ts';
import { validateConfig } from '../../src/config/load.ts';

const limits = frontendLimits(validateConfig({ server: { idleTimeout: '10m', readTimeout: '10m' } }));
const body = Buffer.from('ok');
const frontend = new H1Frontend({
  limits,
  shard: 0,
  logger: pino({ level: 'silent' }),
  onRequest: (_req, res) => res.respond(200, [['content-length', '2']]).end(body),
});
let n = 0;
const server = net.createServer((s) => frontend.accept(s, 'http', `c${n++}`));
server.listen(0, '127.0.0.1', () => console.log((server.address() as net.AddressInfo).port));
const gc = (globalThis as { gc?: () => void }).gc;
if (gc) setInterval(gc, 200).unref();
