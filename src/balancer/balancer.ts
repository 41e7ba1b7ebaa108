// The facade the proxy calls, built per thread over one immutable config (a reload builds a new one). select() decides where a
// request goes; afterResponse() learns from the backend's answer (Moodle session ids, affinity cookie).
//
// Order of select(): (1) the affinity cookie, (2) the Moodle session id in the shared session table,
// (3) the route group's strategy. A pinned backend that is down, drained, full or excluded is skipped,
// the strategy picks another, and afterResponse() re-pins the client to it: a Moodle cluster keeps
// sessions in a shared store, so moving a session costs a cache miss, not a logout.
import type { LoadBalancerConfig } from '../config/types.ts';
import { MAX_BACKENDS, type SharedState } from '../shared/state.ts';
import { type Backend, backendsFromConfig, DEFAULT_GROUP } from './backend.ts';
import { affinityToken, parseSetCookie, setCookieHeader } from './affinity.ts';
import { isEligible } from './eligibility.ts';
import { Router } from './router.ts';
import type { SessionTable } from './session-table.ts';
import type { SelectionStrategy } from './strategy.ts';
import { createStrategy } from './create-strategy.ts';

export interface BalancerOptions {
  lb: LoadBalancerConfig;
  /** Moodle's session cookie name (moodle.sessionCookie, "MoodleSession" by default). */
  sessionCookie: string;
  state: SharedState;
  sessions: SessionTable;
  /** The primary's slot of each of lb.backendServers (same order); absent: position = slot. */
  slots?: readonly number[];
}

export interface SelectRequest {
  host: string;
  path: string;
  clientIp: string;
  /** parseCookies() of the request's Cookie fields. */
  cookies: Map<string, string>;
  /** Backends already tried by this request. */
  exclude?: ReadonlySet<number>;
}

export type SelectReason = 'affinity' | 'session' | 'strategy';

export interface Selection {
  backend: Backend;
  reason: SelectReason;
}

export class BalancerConfigError extends Error {
  readonly code = 'QUICLB_ROUTE_GROUP_EMPTY';
  constructor(group: string) {
    super(`loadBalancer.routes: group "${group}" has no backend; set "group": "${group}" on at least one of loadBalancer.backendServers`);
    this.name = 'BalancerConfigError';
  }
}

interface Group {
  backends: readonly Backend[];
  members: Uint8Array; // members[backend.index] === 1 when the backend serves the group (indexed by slot)
  strategy: SelectionStrategy;
}

export class Balancer {
  readonly backends: readonly Backend[];
  private readonly persistence: boolean;
  private readonly affinityCookie: string;
  private readonly sessionCookie: string;
  private readonly state: SharedState;
  private readonly sessions: SessionTable;
  private readonly router: Router;
  private readonly groups = new Map<string, Group>();
  private readonly byToken = new Map<string, Backend>();
  /** By slot (Backend.index): the backend, its affinity token. */
  private readonly bySlot: Array<Backend | undefined> = [];
  private readonly tokens: string[] = [];
  /** The affinity Set-Cookie value per backend slot, built once (it depends only on the backend and TLS). */
  private readonly plainCookies: string[] = [];
  private readonly secureCookies: string[] = [];

  constructor(opts: BalancerOptions) {
    this.backends = backendsFromConfig(opts.lb.backendServers, opts.slots);
    this.persistence = opts.lb.sessionPersistence;
    this.affinityCookie = opts.lb.affinityCookie;
    this.sessionCookie = opts.sessionCookie;
    this.state = opts.state;
    this.sessions = opts.sessions;
    this.router = new Router(opts.lb.routes);
    for (const b of this.backends) {
      this.bySlot[b.index] = b;
      this.tokens[b.index] = affinityToken(b);
      this.byToken.set(this.tokens[b.index], b);
    }

    const names = new Set([DEFAULT_GROUP, ...this.router.groups(), ...this.backends.map((b) => b.group)]);
    for (const name of names) {
      let list = this.backends.filter((b) => b.group === name);
      // A config without groups puts every backend in "default"; one that names groups for all backends
      // still needs somewhere for unrouted requests to go: all backends.
      if (name === DEFAULT_GROUP && list.length === 0) list = [...this.backends];
      if (list.length === 0) throw new BalancerConfigError(name);
      const members = new Uint8Array(MAX_BACKENDS);
      for (const b of list) members[b.index] = 1;
      this.groups.set(name, { backends: list, members, strategy: createStrategy(opts.lb.strategy, list, opts.state) });
    }
  }

  /** The backend in slot `i`, if this balancer has one there. */
  byIndex(i: number): Backend | undefined {
    return this.bySlot[i];
  }

  /** The route group a request belongs to (exposed for logs and the admin API). */
  groupFor(host: string, path: string): string {
    return this.router.groupFor(host, path);
  }

  /** Every backend that can serve a request for host and path (its route group), whatever their health. */
  routeBackends(host: string, path: string): readonly Backend[] {
    return this.groups.get(this.router.groupFor(host, path))?.backends ?? [];
  }

  select(req: SelectRequest): Selection | undefined {
    const group = this.groups.get(this.router.groupFor(req.host, req.path));
    if (group === undefined) return undefined; // unreachable: every routed group was built above
    if (this.persistence) {
      const token = req.cookies.get(this.affinityCookie);
      const pinned = token === undefined ? undefined : this.byToken.get(token);
      if (pinned !== undefined && this.usable(pinned, group, req.exclude)) return { backend: pinned, reason: 'affinity' };

      const sid = req.cookies.get(this.sessionCookie);
      if (sid !== undefined && sid !== '') {
        const idx = this.sessions.lookup(sid);
        const known = idx === undefined ? undefined : this.bySlot[idx];
        if (known !== undefined && this.usable(known, group, req.exclude)) return { backend: known, reason: 'session' };
      }
    }
    const backend = group.strategy.pick({ clientIp: req.clientIp, exclude: req.exclude });
    return backend === undefined ? undefined : { backend, reason: 'strategy' };
  }

  /**
   * Call once the backend's response headers arrived. Records the Moodle session id -> backend (a new id
   * from the backend's Set-Cookie, or the one the request carried) and returns the affinity Set-Cookie
   * value to add to the response, or undefined when the client already holds the right one.
   * `secure`: the client connection is TLS (see setCookieHeader for why plain HTTP gets no Secure).
   */
  afterResponse(reqCookies: Map<string, string>, backend: Backend, setCookieValuesFromBackend: readonly string[], secure = false): string | undefined {
    if (!this.persistence) return undefined;
    let sessionSet = false;
    for (const v of setCookieValuesFromBackend) {
      const c = parseSetCookie(v);
      if (c === undefined || c.name !== this.sessionCookie) continue;
      sessionSet = true;
      if (c.expired || c.value === '' || c.value === 'deleted') {
        // Logout or session destroyed: drop the old id rather than leave it pinned.
        const old = reqCookies.get(this.sessionCookie);
        if (old !== undefined && old !== '') this.sessions.forget(old);
      } else {
        this.sessions.remember(c.value, backend.index);
      }
    }
    if (!sessionSet) {
      // Only ids a backend issued are in the table: a client cannot fill it with ids it invents. A known id
      // that moved (its backend went down) is re-pinned to where it is served now.
      const sid = reqCookies.get(this.sessionCookie);
      if (sid !== undefined && sid !== '') {
        const known = this.sessions.lookup(sid);
        if (known !== undefined && known !== backend.index) this.sessions.remember(sid, backend.index);
      }
    }
    if (reqCookies.get(this.affinityCookie) === this.tokens[backend.index]) return undefined;
    const cache = secure ? this.secureCookies : this.plainCookies;
    return (cache[backend.index] ??= setCookieHeader(this.affinityCookie, backend, secure));
  }

  private usable(b: Backend, group: Group, exclude: ReadonlySet<number> | undefined): boolean {
    return group.members[b.index] === 1 && isEligible(b, this.state, exclude);
  }
}
