// Request -> backend group, from loadBalancer.routes. A route matches when its host (if any) equals the
// request host, compared case-insensitively without the port (RFC 9110 §4.2.3: host is case-insensitive),
// and the path starts with its pathPrefix (a plain string prefix, as an nginx prefix location). Among
// matches the longest prefix wins; equal lengths go to the route listed first. No match: "default".
import type { RouteConfig } from '../config/types.ts';
import { DEFAULT_GROUP } from './backend.ts';

interface CompiledRoute {
  host: string | undefined;
  prefix: string;
  group: string;
}

export class Router {
  private readonly routes: readonly CompiledRoute[];

  constructor(routes: readonly RouteConfig[]) {
    this.routes = routes.map((r) => ({
      host: r.host === undefined || r.host === '' ? undefined : stripPort(r.host.toLowerCase()),
      prefix: r.pathPrefix === undefined || r.pathPrefix === '' ? '/' : r.pathPrefix,
      group: r.group,
    }));
  }

  /** Groups named by routes, for the balancer to check each has backends. */
  groups(): string[] {
    return [...new Set(this.routes.map((r) => r.group))];
  }

  groupFor(host: string, path: string): string {
    const h = stripPort(host.toLowerCase());
    let best: CompiledRoute | undefined;
    for (const r of this.routes) {
      if (r.host !== undefined && r.host !== h) continue;
      if (!path.startsWith(r.prefix)) continue;
      if (best === undefined || r.prefix.length > best.prefix.length) best = r;
    }
    return best?.group ?? DEFAULT_GROUP;
  }
}

/** "example.org:8443" -> "example.org", "[::1]:443" -> "[::1]"; a bare IPv6 literal has no port to strip. */
export function stripPort(host: string): string {
  if (host.startsWith('[')) {
    const end = host.indexOf(']');
    return end < 0 ? host : host.slice(0, end + 1);
  }
  const colon = host.indexOf(':');
  if (colon < 0) return host;
  return host.indexOf(':', colon + 1) >= 0 ? host : host.slice(0, colon);
}
