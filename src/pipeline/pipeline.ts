// The request pipeline of one shard: every request of every protocol runs the same phases in the same order.
// The runner is the error boundary: whatever a phase throws (or rejects with) answers 500, or breaks the
// response if it had started, and never reaches the shard's top level. A configuration reload builds a new
// Pipeline; the replaced one keeps serving the requests it started, and drain() says when the last one ended.
import type { BodySink, FrontRequest, FrontResponse, HeaderList, RequestHandler } from '../shared/http-types.ts';
import type { Logger } from '../shared/logger.ts';
import { Exchange, type ResponsePath } from './exchange.ts';
import type { Phase, ResponseHead } from './phase.ts';

type RequestHook = (ex: Exchange) => boolean | Promise<boolean>;

export class Pipeline implements ResponsePath {
  readonly phases: readonly Phase[];
  private readonly requestHooks: RequestHook[];
  private readonly backendHooks: Phase[];
  private readonly responseHooks: Phase[];
  private readonly bodyHooks: Phase[];
  private readonly doneHooks: Phase[];
  private readonly logger: Logger;
  /** Requests handed to handle() whose done hooks have not run yet. */
  private inFlight = 0;
  private drainWaiters: Array<() => void> = [];

  constructor(phases: readonly Phase[], logger: Logger) {
    this.phases = phases;
    this.logger = logger;
    this.requestHooks = phases.filter((p) => p.request).map((p) => p.request!.bind(p));
    this.backendHooks = phases.filter((p) => p.backendResponse);
    this.responseHooks = phases.filter((p) => p.response);
    this.bodyHooks = phases.filter((p) => p.body);
    this.doneHooks = phases.filter((p) => p.done);
  }

  /** The handler the frontends call. */
  readonly handle: RequestHandler = (req: FrontRequest, res: FrontResponse): void => {
    const ex = new Exchange(req, res, this);
    this.inFlight++;
    this.run(ex, 0);
  };

  /** Requests of this pipeline still running. */
  get active(): number {
    return this.inFlight;
  }

  /** Resolves once no request of this pipeline is running (at once when none is). */
  drain(): Promise<void> {
    if (this.inFlight === 0) return Promise.resolve();
    return new Promise((resolve) => this.drainWaiters.push(resolve));
  }

  private run(ex: Exchange, from: number): void {
    const hooks = this.requestHooks;
    try {
      for (let i = from; i < hooks.length; i++) {
        const verdict = hooks[i](ex);
        if (verdict === false) continue;
        if (verdict === true) {
          this.finish(ex);
          return;
        }
        verdict.then(
          (answered) => (answered ? this.finish(ex) : this.run(ex, i + 1)),
          (err: unknown) => this.fail(ex, err),
        );
        return;
      }
      // Every chain ends in a phase that answers (the proxy); reaching here is a bug.
      this.fail(ex, new Error('no phase answered the request'));
    } catch (err) {
      this.fail(ex, err);
    }
  }

  takeOver(ex: Exchange, status: number, headers: HeaderList): Promise<void> | undefined {
    for (let i = 0; i < this.backendHooks.length; i++) {
      let taken: Promise<void> | undefined;
      try {
        taken = this.backendHooks[i].backendResponse!(ex, { status, headers });
      } catch (err) {
        // The phase claimed the response and failed: the runner answers 500 (or breaks the response).
        taken = Promise.reject(err);
      }
      if (taken !== undefined) {
        // Awaited only once the backend's body is read; until then a failure must not count as unhandled.
        taken.catch(() => {});
        return taken;
      }
    }
    return undefined;
  }

  respond(ex: Exchange, status: number, headers: HeaderList): BodySink {
    const head: ResponseHead = { status, headers };
    this.filterHead(ex, head);
    ex.status = head.status;
    let sink = ex.res.respond(head.status, head.headers);
    // Body bytes flow through the phases in their order (compression before cache store: the cache keeps
    // what the client gets), so the last phase's filter sits next to the client and is wrapped first.
    for (let i = this.bodyHooks.length - 1; i >= 0; i--) sink = this.bodyHooks[i].body!(ex, head, sink);
    return sink;
  }

  filterHead(ex: Exchange, head: ResponseHead): void {
    for (let i = 0; i < this.responseHooks.length; i++) {
      try {
        this.responseHooks[i].response!(ex, head);
      } catch (err) {
        // A filter's bug must not turn into a backend failure (the forwarder would see the throw).
        this.logger.error({ err, phase: this.responseHooks[i].name }, 'response filter failed');
      }
    }
  }

  private fail(ex: Exchange, err: unknown): void {
    this.logger.error({ err, method: ex.req.method, path: ex.req.path }, 'request pipeline failed');
    try {
      if (!ex.res.headersSent) ex.answer(500, '500 Internal Server Error: quiclb failed to handle this request.\n', undefined, 'error');
      else ex.res.abort(err instanceof Error ? err : new Error(String(err)));
    } catch (e) {
      this.logger.error({ err: e }, 'could not answer a failed request');
      try {
        ex.res.abort();
      } catch {
        // nothing more to do for this request
      }
    }
    this.finish(ex);
  }

  private finish(ex: Exchange): void {
    for (let i = 0; i < this.doneHooks.length; i++) {
      try {
        this.doneHooks[i].done!(ex);
      } catch (err) {
        this.logger.error({ err }, `pipeline phase ${this.doneHooks[i].name} failed after the response`);
      }
    }
    if (--this.inFlight === 0 && this.drainWaiters.length > 0) {
      const waiters = this.drainWaiters;
      this.drainWaiters = [];
      for (const w of waiters) w();
    }
  }
}
