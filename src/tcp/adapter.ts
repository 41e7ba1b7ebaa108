// node:http / node:http2 compat (req, res) pairs to the proxy's FrontRequest / FrontResponse.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Http2ServerRequest, Http2ServerResponse } from 'node:http2';
import type { FrontRequest, FrontResponse, HeaderList, Protocol } from '../proxy/types.ts';
import { writableSink } from '../shared/writable-sink.ts';
import type { Writable } from 'node:stream';

type AnyRequest = IncomingMessage | Http2ServerRequest;
type AnyResponse = ServerResponse | Http2ServerResponse;

function headerList(raw: string[]): HeaderList {
  const out: HeaderList = [];
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i].toLowerCase();
    if (name.charCodeAt(0) === 58 /* ':' */) continue;
    out.push([name, raw[i + 1]]);
  }
  return out;
}

/** A request carries a body when it announces one (RFC 9112 §6.3) or, on HTTP/2, when HEADERS had no END_STREAM. */
function hasBody(req: AnyRequest, protocol: Protocol): boolean {
  if (protocol === 'HTTP/2') return !(req as Http2ServerRequest).stream.endAfterHeaders;
  const len = req.headers['content-length'];
  return req.headers['transfer-encoding'] !== undefined || (len !== undefined && len !== '0');
}

export function toFrontRequest(req: AnyRequest, scheme: 'http' | 'https', shard: number, connectionKey: string): FrontRequest {
  const protocol: Protocol = req.httpVersionMajor === 2 ? 'HTTP/2' : 'HTTP/1.1';
  const socket = req.socket;
  const authority = (protocol === 'HTTP/2' ? (req.headers[':authority'] as string | undefined) : undefined) ?? req.headers.host ?? '';
  return {
    protocol,
    method: req.method ?? 'GET',
    scheme,
    authority,
    path: req.url ?? '/',
    headers: headerList(req.rawHeaders),
    body: hasBody(req, protocol) ? req : null,
    remoteAddress: socket.remoteAddress ?? '',
    remotePort: socket.remotePort ?? 0,
    localPort: socket.localPort ?? 0,
    connectionKey,
    shard,
  };
}

function toNodeHeaders(headers: HeaderList): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const [name, value] of headers) {
    const prev = out[name];
    if (prev === undefined) out[name] = value;
    else if (Array.isArray(prev)) prev.push(value);
    else out[name] = [prev, value];
  }
  return out;
}

export function toFrontResponse(res: AnyResponse, writeTimeoutMs: number): FrontResponse {
  let aborted = false;
  const abortCallbacks: Array<() => void> = [];
  const onClose = () => {
    if (!res.writableFinished && !aborted) {
      aborted = true;
      for (const cb of abortCallbacks) cb();
    }
  };
  res.once('close', onClose);
  const front: FrontResponse = {
    respond(status: number, headers: HeaderList) {
      (res as ServerResponse).writeHead(status, toNodeHeaders(headers));
      // server.writeTimeout: a client that stops reading the response for this long is dropped.
      if (writeTimeoutMs > 0) res.setTimeout(writeTimeoutMs, () => front.abort(new Error('write timeout')));
      return writableSink(res as unknown as Writable);
    },
    inform(status: number) {
      if (status === 100) (res as ServerResponse).writeContinue();
    },
    abort(reason?: Error): void {
      aborted = true;
      if ('stream' in res) res.stream.close(2 /* INTERNAL_ERROR */);
      else res.destroy(reason);
    },
    get headersSent() {
      return res.headersSent;
    },
    get finished() {
      return res.writableFinished;
    },
    onClientAbort(cb: () => void): void {
      abortCallbacks.push(cb);
    },
  };
  return front;
}
