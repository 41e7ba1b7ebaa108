// The per-request context every phase reads and writes (Pingora's CTX): the request and its response,
// what was decided about it (backend, attempts, status), and the cookies, parsed once when first asked.
import type { Duplex, Readable } from 'node:stream';
import type { BodySink, FrontRequest, FrontResponse, HeaderList } from '../shared/http-types.ts';
import type { Backend } from '../balancer/backend.ts';
import type { ScriptTarget } from '../fastcgi/script.ts';
import { parseCookies } from '../balancer/affinity.ts';
import type { ExchangeCache } from './exchange-cache.ts';

/** The response filters and body filters the pipeline runs on every answer (see pipeline.ts). */
export interface ResponsePath {
  respond(ex: Exchange, status: number, headers: HeaderList): BodySink;
  /** The response filters alone, for an answer without a body (a WebSocket's 101). */
  filterHead(ex: Exchange, head: { status: number; headers: HeaderList }): void;
  /** The phases' backendResponse hooks: a promise when one took the response over. */
  takeOver(ex: Exchange, status: number, headers: HeaderList): Promise<void> | undefined;
}

export class Exchange {
  readonly req: FrontRequest;
  readonly res: FrontResponse;
  /** performance.now() when the request reached the pipeline. */
  readonly started: number;
  /** The request body the backend gets: req.body, maybe wrapped (size limit). */
  body: Readable | null;
  /** Status sent to the client; 0 until answered. 499 when the client left first. */
  status = 0;
  backend: Backend | undefined;
  attempts = 0;
  /** Set by quiclb's own answers: which phase answered (for the access log). */
  answeredBy: string | undefined;
  /** What the response cache is doing for this request (src/pipeline/exchange-cache.ts); undefined when it never looked. */
  cache: ExchangeCache | undefined;
  /** The PHP script under moodle.wwwRoot the request runs on a FastCGI backend (set by the static phase). */
  script: ScriptTarget | undefined;
  /** Set when a phase took the backend's response over (see Phase.backendResponse): settles when it answered. */
  takeover: Promise<void> | undefined;
  private cookieMap: Map<string, string> | undefined;
  private abortHooks: Array<() => void> | undefined;
  private readonly path: ResponsePath;

  constructor(req: FrontRequest, res: FrontResponse, path: ResponsePath) {
    this.req = req;
    this.res = res;
    this.path = path;
    this.body = req.body;
    this.started = performance.now();
  }

  /** Cookie fields (HTTP/2 and HTTP/3 may split them) parsed once. */
  cookies(): Map<string, string> {
    if (this.cookieMap === undefined) {
      const values: string[] = [];
      for (const [name, value] of this.req.headers) if (name === 'cookie') values.push(value);
      this.cookieMap = parseCookies(values);
    }
    return this.cookieMap;
  }

  /** Sends the head through the response filters and returns the (maybe wrapped) body sink. */
  respond(status: number, headers: HeaderList): BodySink {
    this.status = status;
    return this.path.respond(this, status, headers);
  }

  /**
   * Accepts a WebSocket handshake (req.upgrade): the backend's 101 head passes the response filters (the
   * affinity cookie; no body filter, there is no body) and the frontend switches the client over
   * (FrontResponse.upgrade). Returns the client's byte stream. Throws when the frontend cannot switch.
   */
  upgrade(headers: HeaderList): Duplex {
    const upgrade = this.res.upgrade;
    if (upgrade === undefined) throw new Error(`${this.req.protocol} frontend cannot switch to WebSocket`);
    const head = { status: 101, headers };
    this.path.filterHead(this, head);
    // What the client sees: 101 on HTTP/1.1, 200 on HTTP/2 and HTTP/3 (RFC 8441 §5, RFC 9220 §3).
    this.status = this.req.protocol === 'HTTP/1.1' ? 101 : 200;
    return upgrade.call(this.res, head.headers);
  }

  /**
   * A backend's response head: a phase may take the response over (then null: the caller reads and drops
   * the backend's body), else it goes out as respond() sends it.
   */
  respondFromBackend(status: number, headers: HeaderList): BodySink | null {
    const takeover = this.path.takeOver(this, status, headers);
    if (takeover === undefined) return this.respond(status, headers);
    this.takeover = takeover;
    return null;
  }

  /** `cb` runs if the response is broken off, by quiclb (abort) or by the client leaving: body filters free their state. */
  onAbort(cb: () => void): void {
    (this.abortHooks ??= []).push(cb);
    this.res.onClientAbort(cb);
  }

  /** Breaks the response (the client sees it incomplete) and tells the body filters. */
  abort(reason?: Error): void {
    const hooks = this.abortHooks;
    this.abortHooks = undefined;
    if (hooks !== undefined) for (const cb of hooks) cb();
    this.res.abort(reason);
  }

  /**
   * The client's FrontResponse with respond() and abort() going through this exchange, for code that answers
   * with a FrontResponse (serveFile): its answers pass the response and body filters like any other.
   */
  response(): FrontResponse {
    const res = this.res;
    return {
      respond: (status, headers) => this.respond(status, headers),
      inform: (status, headers) => res.inform(status, headers),
      abort: (reason) => this.abort(reason),
      get headersSent() {
        return res.headersSent;
      },
      get finished() {
        return res.finished;
      },
      onClientAbort: (cb) => res.onClientAbort(cb),
    };
  }

  /** A small text answer from quiclb itself (errors, redirects, refusals). */
  answer(status: number, text: string, extra?: HeaderList, by?: string): void {
    if (this.res.headersSent) {
      this.abort();
      return;
    }
    if (by !== undefined) this.answeredBy = by;
    const body = Buffer.from(text);
    const headers: HeaderList = [
      ['content-type', 'text/plain; charset=utf-8'],
      ['content-length', String(body.length)],
      ['cache-control', 'no-store'],
    ];
    if (extra !== undefined) for (const h of extra) headers.push(h);
    const sink = this.respond(status, headers);
    sink.end(this.req.method === 'HEAD' ? undefined : body);
  }
}
