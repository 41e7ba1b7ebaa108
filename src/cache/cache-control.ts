// Cache-Control parsing (RFC 9111 §5.2) into the directives a shared cache acts on. Unknown directives
// are ignored (§5.2.3). Where the field is malformed or contradicts itself the stricter reading wins
// (§4.2.1: "the most restrictive directive should be honored"): a repeated delta-seconds directive keeps
// its smallest value, an unparsable one reads as 0 (stale), and a qualified private="..." or
// no-cache="..." counts as the unqualified directive (allowed: a cache may always store less).

export interface CacheControl {
  public: boolean;
  private: boolean;
  noStore: boolean;
  noCache: boolean;
  mustRevalidate: boolean;
  proxyRevalidate: boolean;
  immutable: boolean;
  /** Seconds; undefined when absent. */
  maxAge?: number;
  sMaxage?: number;
  staleWhileRevalidate?: number;
  staleIfError?: number;
}

// RFC 9111 §1.2.2: a delta-seconds value above 2^31 is read as 2^31.
const MAX_DELTA = 2 ** 31;

type Numeric = 'maxAge' | 'sMaxage' | 'staleWhileRevalidate' | 'staleIfError';
const NUMERIC: Record<string, Numeric> = {
  'max-age': 'maxAge',
  's-maxage': 'sMaxage',
  'stale-while-revalidate': 'staleWhileRevalidate',
  'stale-if-error': 'staleIfError',
};
type Flag = 'public' | 'private' | 'noStore' | 'noCache' | 'mustRevalidate' | 'proxyRevalidate' | 'immutable';
const FLAGS: Record<string, Flag> = {
  public: 'public',
  private: 'private',
  'no-store': 'noStore',
  'no-cache': 'noCache',
  'must-revalidate': 'mustRevalidate',
  'proxy-revalidate': 'proxyRevalidate',
  immutable: 'immutable',
};

export function parseCacheControl(value: string | undefined): CacheControl {
  const cc: CacheControl = {
    public: false,
    private: false,
    noStore: false,
    noCache: false,
    mustRevalidate: false,
    proxyRevalidate: false,
    immutable: false,
  };
  if (value === undefined) return cc;
  for (const item of splitDirectives(value)) {
    const eq = item.indexOf('=');
    const name = (eq === -1 ? item : item.slice(0, eq)).trim().toLowerCase();
    const arg = eq === -1 ? undefined : unquote(item.slice(eq + 1).trim());
    const flag = FLAGS[name];
    if (flag !== undefined) {
      cc[flag] = true;
      continue;
    }
    const num = NUMERIC[name];
    if (num === undefined) continue;
    const seconds = arg !== undefined && /^\d+$/.test(arg) ? Math.min(Number(arg), MAX_DELTA) : 0;
    const prev = cc[num];
    cc[num] = prev === undefined ? seconds : Math.min(prev, seconds);
  }
  return cc;
}

/** Splits at commas outside quoted strings. */
function splitDirectives(value: string): string[] {
  const out: string[] = [];
  let start = 0;
  let quoted = false;
  for (let i = 0; i < value.length; i++) {
    const c = value[i];
    if (quoted) {
      if (c === '\\') i++;
      else if (c === '"') quoted = false;
    } else if (c === '"') quoted = true;
    else if (c === ',') {
      out.push(value.slice(start, i));
      start = i + 1;
    }
  }
  out.push(value.slice(start));
  return out.map((d) => d.trim()).filter((d) => d !== '');
}

function unquote(v: string): string {
  return v.length >= 2 && v.startsWith('"') && v.endsWith('"') ? v.slice(1, -1).replace(/\\(.)/g, '$1') : v;
}
