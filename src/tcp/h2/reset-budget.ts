// CVE-2023-44487 (HTTP/2 Rapid Reset): a client that opens streams and resets them at once costs the
// server a request (and, once dispatched, a backend request) per stream, and never runs into
// SETTINGS_MAX_CONCURRENT_STREAMS. quiclb counts client resets of streams whose response had not finished
// in two budgets: per connection (ResetWindow in each session), and per client address (ClientResetBudget),
// so that a client which reconnects after every GOAWAY does not start over.
//
// Over its address budget, a client is not locked out (many users share one address behind a NAT, and a
// browser cancels requests when a page is left): its connections keep working until they reset a stream,
// and each one that does is closed at once, so every further reset costs the client a new TLS handshake.

/** Resets counted in fixed windows: at most `max` per `windowMs`. */
export class ResetWindow {
  private readonly max: number;
  private readonly windowMs: number;
  private start = 0;
  private count = 0;

  constructor(max: number, windowMs: number) {
    this.max = max;
    this.windowMs = windowMs;
  }

  /** Counts `n` resets at `now` (ms); false once the window holds more than `max`. */
  hit(now: number, n = 1): boolean {
    if (now - this.start >= this.windowMs) {
      this.start = now;
      this.count = 0;
    }
    this.count += n;
    return this.count <= this.max;
  }
}

/**
 * Client resets per client address. This shard's table is LocalClientResetBudget; a table shared by all
 * shards (src/ratelimit) can take its place behind the same call.
 */
export interface ClientResetBudget {
  /** Counts `n` resets by `client` (a normalised address) at `now` (ms); false once it is over budget. */
  spend(client: string, now: number, n?: number): boolean;
}

export interface LocalClientResetBudgetOptions {
  maxResets: number;
  windowMs: number;
  /** Addresses remembered; past it the oldest is forgotten (the per-connection budget still applies). */
  maxClients?: number;
}

export class LocalClientResetBudget implements ClientResetBudget {
  private readonly clients = new Map<string, ResetWindow>();
  private readonly opts: Required<LocalClientResetBudgetOptions>;

  constructor(opts: LocalClientResetBudgetOptions) {
    this.opts = { maxClients: 10_000, ...opts };
  }

  spend(client: string, now: number, n = 1): boolean {
    let w = this.clients.get(client);
    if (w === undefined) {
      if (this.clients.size >= this.opts.maxClients) this.clients.delete(this.clients.keys().next().value!);
      w = new ResetWindow(this.opts.maxResets, this.opts.windowMs);
      this.clients.set(client, w);
    }
    return w.hit(now, n);
  }
}
