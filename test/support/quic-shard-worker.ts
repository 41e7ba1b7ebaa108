// A minimal shard for QUIC tests: a real QuicEndpoint (src/quic/endpoint.ts) with a trivial request
// handler instead of the proxy. GET /anything answers "path=<path> shard=<n>"; `?bytes=N` answers N bytes
// of a repeating pattern (the test checks them); `?delay=MS` answers after MS milliseconds (to keep a
// connection busy while the client migrates); POST answers "received=<body bytes>".
//
// For tests of the request lifecycle, the worker reports what the pipeline would see as
// {type: 'test:event', event, tag, ...} messages: `/hold?tag=T` never answers and reports 'dispatched',
// 'abort' (onClientAbort), 'body-end' / 'body-error' (with the bytes read); `?tag=T` on a `?bytes=N` answer
// reports 'abort' too; `/slow-read?tag=T&ms=M` reads its body only after M ms, then answers; `/throw`
// throws from the handler; `/dup` answers with repeated single-value fields; `/bad-status` calls
// respond() with an impossible status and reports whether it threw; `/early-hints` sends a 103 first;
// `/echo-head` answers the request's
// method, authority, path and headers as JSON. {type: 'test:counts'} answers the endpoint's per-stream
// state sizes.
import { parentPort, workerData } from 'node:worker_threads';
import type { TransferListItem } from 'node:worker_threads';
import pino from 'pino';
import type { Config } from '../../src/config/types.ts';
import type { FrontRequest, FrontResponse } from '../../src/proxy/types.ts';
import { SharedState } from '../../src/shared/state.ts';
import { QuicEndpoint } from '../../src/quic/endpoint.ts';

export interface QuicShardWorkerData {
  shard: number;
  config: Config;
  certFile: string;
  keyFile: string;
  stateBuffer: SharedArrayBuffer;
  logLevel: string;
  resetKey: Uint8Array;
}

/** The body `?bytes=N` returns: byte i is (i * 31 + 7) & 0xff, so truncation or reordering shows. */
export function patternBytes(n: number): Buffer {
  const b = Buffer.allocUnsafe(n);
  for (let i = 0; i < n; i++) b[i] = (i * 31 + 7) & 0xff;
  return b;
}

function report(event: string, tag: string | null, extra: Record<string, unknown> = {}): void {
  parentPort?.postMessage({ type: 'test:event', event, tag, ...extra });
}

function watchBody(req: FrontRequest, tag: string | null, onEnd?: (bytes: number) => void): void {
  if (!req.body) return;
  let n = 0;
  req.body.on('data', (c: Buffer) => (n += c.length));
  req.body.on('end', () => {
    report('body-end', tag, { bytes: n });
    onEnd?.(n);
  });
  req.body.on('error', (err) => report('body-error', tag, { bytes: n, message: err.message }));
}

function handle(shard: number, req: FrontRequest, res: FrontResponse): void {
  const url = new URL(req.path, 'https://x');
  const tag = url.searchParams.get('tag');
  if (tag !== null) res.onClientAbort(() => report('abort', tag));
  switch (url.pathname) {
    case '/hold':
      report('dispatched', tag, { method: req.method });
      watchBody(req, tag);
      return;
    case '/slow-read': {
      report('dispatched', tag);
      const body = req.body;
      body?.pause();
      setTimeout(() => {
        watchBody(req, tag, (n) => res.respond(200, [['content-type', 'text/plain']]).end(Buffer.from(`received=${n}\n`)));
        body?.resume();
      }, Number(url.searchParams.get('ms') ?? 1000));
      return;
    }
    case '/throw':
      throw new Error('a handler bug');
    case '/dup':
      res
        .respond(200, [
          ['etag', '"first"'],
          ['etag', '"second"'],
          ['x-content-type-options', 'nosniff'],
          ['x-content-type-options', 'nosniff'],
          ['last-modified', 'Mon, 01 Jan 2024 00:00:00 GMT'],
          ['last-modified', 'Tue, 02 Jan 2024 00:00:00 GMT'],
          ['location', '/first'],
          ['location', '/second'],
          ['set-cookie', 'a=1'],
          ['set-cookie', 'b=2'],
        ])
        .end(Buffer.from('dup\n'));
      return;
    case '/bad-status':
      try {
        res.respond(42, [['content-type', 'text/plain']]).end(Buffer.from('never\n'));
        report('respond-returned', tag);
      } catch (err) {
        report('respond-threw', tag, { message: (err as Error).message });
      }
      return;
    case '/early-hints':
      req.body?.resume();
      res.inform(103, [['link', '</style.css>; rel=preload; as=style']]);
      res.respond(200, [['content-type', 'text/plain']]).end(Buffer.from('after hints\n'));
      return;
    case '/echo-head':
      req.body?.resume();
      res
        .respond(200, [['content-type', 'application/json']])
        .end(Buffer.from(JSON.stringify({ method: req.method, authority: req.authority, path: req.path, headers: req.headers })));
      return;
  }
  const delay = Number(url.searchParams.get('delay') ?? 0);
  if (delay > 0) {
    url.searchParams.delete('delay');
    const rest = url.searchParams.size ? `${url.pathname}?${url.searchParams}` : url.pathname;
    setTimeout(() => handle(shard, { ...req, path: rest }, res), Math.min(delay, 10_000));
    return;
  }
  if (req.method === 'POST' && req.body) {
    let n = 0;
    req.body.on('data', (c: Buffer) => (n += c.length));
    req.body.on('end', () => res.respond(200, [['content-type', 'text/plain']]).end(Buffer.from(`received=${n}\n`)));
    return;
  }
  req.body?.resume();
  const bytes = url.searchParams.get('bytes');
  if (bytes !== null) {
    const n = Math.min(Number(bytes) || 0, 64 * 1024 * 1024);
    const w = res.respond(200, [
      ['content-type', 'application/octet-stream'],
      ['content-length', String(n)],
      ['x-shard', String(shard)],
    ]);
    const all = patternBytes(n);
    // Write in 16 KiB pieces honouring backpressure, as the proxy would.
    let off = 0;
    const pump = (): void => {
      while (off < n) {
        const piece = all.subarray(off, Math.min(n, off + 16384));
        off += piece.length;
        if (!w.write(piece)) {
          w.onDrain(pump);
          return;
        }
      }
      w.end();
    };
    pump();
    return;
  }
  res
    .respond(200, [
      ['content-type', 'text/html'],
      ['x-shard', String(shard)],
    ])
    .end(Buffer.from(`<!doctype html><title>quic test</title><p id="r">path=${req.path} shard=${shard} proto=${req.protocol}</p>\n`));
}

if (parentPort) {
  const data = workerData as QuicShardWorkerData;
  const port = parentPort;
  const logger = pino({ level: data.logLevel, base: { shard: data.shard } }, pino.destination({ dest: 2, sync: true }));
  const endpoint = new QuicEndpoint({
    shard: data.shard,
    config: data.config,
    certFile: data.certFile,
    keyFile: data.keyFile,
    resetKey: data.resetKey,
    state: new SharedState(data.stateBuffer),
    logger,
    post: (msg: unknown, transfer?: TransferListItem[]) => port.postMessage(msg, transfer),
    onRequest: (req, res) => handle(data.shard, req, res),
  });
  port.on('message', (msg: any) => {
    if (msg?.type === 'quic:in') {
      endpoint.receiveBatchMessage(msg);
      return;
    }
    if (msg?.type === 'test:counts') {
      port.postMessage({ type: 'test:counts', counts: endpoint.stateCounts() });
      return;
    }
    if (msg?.type === 'shutdown') {
      endpoint.goaway();
      void endpoint.close().then(() => port.postMessage({ type: 'closed' }));
    }
  });
  port.postMessage({ type: 'ready' });
}
