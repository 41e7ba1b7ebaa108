// A minimal caching reverse proxy for the cache's integration tests: node:http in front, undici to one
// origin, and src/cache's API used exactly as the request pipeline is meant to use it (the lookup phase
// before the backend, the store step as a tee on the way to the client). It is also the worked example
// of that API in src/cache/README.md. It does none of the pipeline's other work (balancing, proxy headers).
// With `compress`, CSS and JavaScript go out compressed (br, else gzip) the way the pipeline's compression
// phase will: after the lookup, before the store step; the backend's identity body and each compressed
// variant are stored, so the backend runs once and each coding is made once.
import { brotliCompressSync, gzipSync } from 'node:zlib';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Agent, request } from 'undici';
import { ResponseCache, type CacheOptions } from '../../src/cache/cache.ts';
import { headerValue } from '../../src/cache/headers.ts';
import { codingQuality, parseAcceptEncoding } from '../../src/cache/vary.ts';
import type { Fill } from '../../src/cache/fill.ts';
import type { CacheSettings } from '../../src/cache/settings.ts';
import { discardingSink } from '../../src/cache/tee.ts';
import type { BodySink, FrontRequest, FrontResponse, HeaderList } from '../../src/shared/http-types.ts';
import { writableSink } from '../../src/shared/writable-sink.ts';

const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'transfer-encoding', 'te', 'upgrade', 'proxy-connection', 'trailer']);

function frontRequest(req: IncomingMessage): FrontRequest {
  const headers: HeaderList = [];
  for (let i = 0; i < req.rawHeaders.length; i += 2) headers.push([req.rawHeaders[i].toLowerCase(), req.rawHeaders[i + 1]]);
  const hasBody = req.headers['transfer-encoding'] !== undefined || (req.headers['content-length'] ?? '0') !== '0';
  return {
    protocol: 'HTTP/1.1',
    method: req.method ?? 'GET',
    scheme: 'http',
    authority: req.headers.host ?? '',
    path: req.url ?? '/',
    headers,
    body: hasBody ? req : null,
    remoteAddress: req.socket.remoteAddress ?? '',
    remotePort: req.socket.remotePort ?? 0,
    localPort: req.socket.localPort ?? 0,
    connectionKey: 'test',
    shard: 0,
  };
}

function frontResponse(res: ServerResponse): FrontResponse {
  const onAbort: Array<() => void> = [];
  res.once('close', () => {
    if (!res.writableFinished) for (const cb of onAbort) cb();
  });
  return {
    respond(status, headers) {
      res.writeHead(status, headers.flat());
      return writableSink(res);
    },
    inform() {},
    abort(reason) {
      res.destroy(reason);
    },
    get headersSent() {
      return res.headersSent;
    },
    get finished() {
      return res.writableFinished;
    },
    onClientAbort(cb) {
      onAbort.push(cb);
    },
  };
}

/** The coding the compression phase would use for this response, if any. */
function chooseCoding(req: FrontRequest, headers: HeaderList): 'br' | 'gzip' | undefined {
  if (req.method !== 'GET' || headerValue(headers, 'content-encoding') !== undefined) return undefined;
  if (!/^(text\/|application\/javascript)/.test(headerValue(headers, 'content-type') ?? '')) return undefined;
  const ae = headerValue(req.headers, 'accept-encoding');
  const accept = ae === undefined ? undefined : parseAcceptEncoding(ae);
  if (codingQuality(accept, 'br') > 0) return 'br';
  if (codingQuality(accept, 'gzip') > 0) return 'gzip';
  return undefined;
}

/** What the compressor changes in the headers: Content-Encoding, Vary, a weak ETag, no Content-Length. */
function compressedHeaders(headers: HeaderList, coding: string): HeaderList {
  const out: HeaderList = headers.filter(([k]) => k !== 'content-length' && k !== 'etag');
  out.push(['content-encoding', coding]);
  const etag = headerValue(headers, 'etag');
  if (etag !== undefined) out.push(['etag', etag.startsWith('W/') ? etag : `W/${etag}`]);
  if (!/accept-encoding/i.test(headerValue(headers, 'vary') ?? '')) out.push(['vary', 'Accept-Encoding']);
  return out;
}

export interface CacheProxy {
  port: number;
  cache: ResponseCache;
  /** Bodies the compression stage compressed so far. */
  compressions(): number;
  close(): Promise<void>;
}

export interface CacheProxyOptions extends CacheOptions {
  compress?: boolean;
}

export async function startCacheProxy(origin: string, settings: CacheSettings, sharedBuffer: SharedArrayBuffer, opts: CacheProxyOptions = {}): Promise<CacheProxy> {
  const cache = ResponseCache.open(settings, sharedBuffer, opts);
  const agent = new Agent({ keepAliveTimeout: 1000 });
  let compressions = 0;

  /** Compresses the whole body at its end (a test stand-in for the streaming compressor). */
  function compressingSink(coding: 'br' | 'gzip', downstream: BodySink): BodySink {
    const parts: Uint8Array[] = [];
    return {
      write: (c) => parts.push(c) > 0,
      end: (c) => {
        if (c !== undefined) parts.push(c);
        const all = Buffer.concat(parts);
        compressions++;
        downstream.end(coding === 'br' ? brotliCompressSync(all) : gzipSync(all));
      },
      onDrain: (cb) => void setImmediate(cb),
    };
  }

  /** forward -> (store tee) -> client. Used for misses, revalidations and background revalidations. */
  async function forward(req: FrontRequest, res: FrontResponse | undefined, fill: Fill | undefined): Promise<void> {
    try {
      const headers = fill !== undefined ? fill.backendHeaders(req.headers) : req.headers;
      const up = await request(origin + req.path, { method: req.method as 'GET', headers: headers.flat(), dispatcher: agent });
      const upHeaders: HeaderList = [];
      for (const [k, v] of Object.entries(up.headers)) {
        if (HOP_BY_HOP.has(k) || v === undefined) continue;
        for (const one of Array.isArray(v) ? v : [v]) upHeaders.push([k, one]);
      }
      if (fill?.revalidating && up.statusCode === 304) {
        await up.body.dump();
        const hit = fill.refresh(upHeaders);
        if (res !== undefined) await hit.serve(req, res);
        return;
      }
      if (fill !== undefined && up.statusCode >= 500) {
        const stale = fill.onError();
        if (stale !== undefined) {
          await up.body.dump();
          if (res !== undefined) await stale.serve(req, res);
          return;
        }
      }
      const coding = opts.compress && res !== undefined ? chooseCoding(req, upHeaders) : undefined;
      let sink: BodySink;
      if (coding === undefined) {
        sink = res !== undefined ? res.respond(up.statusCode, upHeaders) : discardingSink();
        if (fill !== undefined) sink = fill.tee(up.statusCode, upHeaders, sink);
      } else {
        // backend -> store (identity) -> compress -> store (variant) -> client
        const zHeaders = compressedHeaders(upHeaders, coding);
        sink = res!.respond(up.statusCode, zHeaders);
        if (fill !== undefined) sink = fill.tee(up.statusCode, zHeaders, sink);
        sink = compressingSink(coding, sink);
        if (fill !== undefined) sink = fill.tee(up.statusCode, upHeaders, sink);
      }
      for await (const chunk of up.body) {
        if (!sink.write(chunk)) await new Promise<void>((r) => sink.onDrain(r));
      }
      sink.end();
    } catch (err) {
      const stale = fill?.onError();
      if (res === undefined) return;
      if (stale !== undefined && !res.headersSent) await stale.serve(req, res);
      else if (!res.headersSent) res.respond(502, [['content-length', '0']]).end();
      else res.abort(err as Error);
    } finally {
      fill?.release();
    }
  }

  async function handle(req: FrontRequest, res: FrontResponse): Promise<void> {
    const found = await cache.lookup(req);
    if (found.kind === 'hit') {
      const { hit } = found;
      if (found.revalidate !== undefined) void forward(req, undefined, found.revalidate);
      const coding = opts.compress && hit.encoding === 'identity' && !hit.notModified(req.headers) ? chooseCoding(req, hit.headers) : undefined;
      if (coding === undefined) {
        await hit.serve(req, res);
        return;
      }
      // stored identity -> compress -> store (new variant) -> client
      const zHeaders = compressedHeaders(hit.headers, coding);
      const sink = compressingSink(coding, hit.tee(hit.status, zHeaders, res.respond(hit.status, zHeaders)));
      for await (const chunk of hit.body()) sink.write(chunk);
      sink.end();
      return;
    }
    await forward(req, res, found.kind === 'fetch' ? found.fill : undefined);
  }

  const server: Server = createServer((nreq, nres) => {
    const res = frontResponse(nres);
    handle(frontRequest(nreq), res).catch(() => res.abort());
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as AddressInfo).port,
    cache,
    compressions: () => compressions,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
      await agent.close();
      cache.close();
    },
  };
}
