// The scenario matrix: protocol x response size x connection reuse, plus a 1 MiB upload per protocol, each with
// quiclb on 1 and 2 shards. Names read `<protocol>-<size>-<reuse>-<N>shard`, e.g. h2-64k-keepalive-1shard.
// The cachedcss scenarios (HTTP/1.1, HTTP/2, HTTP/3) ask for one cacheable stylesheet through quiclb with its
// response cache on and through nginx with proxy_cache (`--scenario cache`).
// FastCGI scenarios (quiclb straight to php-fpm against nginx + php-fpm on the same pool, bench/lib/fastcgi.ts)
// read `fcgi-<kind>-<protocol>-keepalive-<N>shard`, kind php (a small page), static (a file), xaccel (a download).
// Named groups (`--scenario acceptance`) pick the scenarios an issue's acceptance criteria are stated in.
import { BODY_SIZES, CACHED_CSS, UPLOAD_PATH, type SizeName } from './backends.ts';
import { FASTCGI_BODIES, FASTCGI_PATHS, NGINX_FPM, type FastCgiKind } from './fastcgi.ts';
import type { Reuse } from './load-types.ts';
import { PROTOCOLS, type Protocol } from './targets.ts';

export interface Scenario {
  name: string;
  protocol: Protocol;
  /** 'small' | '64k' | '1m' for downloads, 'upload1m' for the 1 MiB POST, 'cachedcss' for the cached stylesheet, the kind for FastCGI scenarios. */
  size: SizeName | 'upload1m' | 'cachedcss' | FastCgiKind;
  /** FastCGI scenarios: what is asked of the php-fpm site. */
  fastcgi?: FastCgiKind;
  /** The target every other one is compared with: 'direct' (the backends), or nginx + php-fpm for FastCGI. */
  baseline: string;
  reuse: Reuse;
  shards: number;
  method: 'GET' | 'POST';
  path: string;
  uploadBytes: number;
  expectBytes: number;
  /** In --quick, peers run on this scenario too (a few only, to stay under a minute). */
  peersInQuick: boolean;
  /** The balancers run with their response cache on (quiclb's cache, nginx proxy_cache); no other peer runs. */
  cache: boolean;
}

/** Protocols of the cachedcss scenarios (the stylesheet over each protocol a browser uses). */
export const CACHE_PROTOCOLS: readonly Protocol[] = ['h1', 'h2', 'h3'];

const UPLOAD_BYTES = 1048576;
const UPLOAD_RESPONSE = 'ok\n'.length;

/**
 * The --quick subset: one representative of each axis, so every protocol, both reuse modes, three sizes (not 16k), the
 * upload and both shard counts appear once. Peers run on the three *-small-keepalive-1shard ones.
 */
export const QUICK_SET: ReadonlyArray<string> = [
  'h1-small-keepalive-1shard',
  'h1-small-keepalive-2shard',
  'h1-1m-keepalive-1shard',
  'h1tls-small-newconn-1shard',
  'h2-small-keepalive-1shard',
  'h2-64k-keepalive-2shard',
  'h3-small-keepalive-1shard',
  'h3-small-newconn-1shard',
  'h1-upload1m-keepalive-1shard',
];
/**
 * The per-request-cost issue's acceptance scenarios (keep-alive; "tiny" is the 100-byte `small`), with every
 * shard count asked for: `--scenario acceptance`.
 */
export const ACCEPTANCE_SET: ReadonlyArray<string> = [
  'h1-small-keepalive',
  'h1-16k-keepalive',
  'h1-1m-keepalive',
  'h1tls-small-keepalive',
  'h2-small-keepalive',
  'h2-16k-keepalive',
  'h3-small-keepalive',
];
/** The cached-stylesheet scenarios: `--scenario cache`. */
export const CACHE_SET: ReadonlyArray<string> = CACHE_PROTOCOLS.map((p) => `${p}-cachedcss-keepalive`);
/** FastCGI mode against nginx + php-fpm: `--scenario fastcgi`. */
export const FASTCGI_SET: ReadonlyArray<string> = (['php', 'static', 'xaccel'] as const).flatMap((k) => [`fcgi-${k}-h1-keepalive`, `fcgi-${k}-h2-keepalive`]);
export const GROUPS: Readonly<Record<string, ReadonlyArray<string>>> = { acceptance: ACCEPTANCE_SET, cache: CACHE_SET, fastcgi: FASTCGI_SET };

const QUICK_PEERS = new Set(['h1-small-keepalive-1shard', 'h2-small-keepalive-1shard', 'h3-small-keepalive-1shard']);

export function allScenarios(shardCounts: number[] = [1, 2]): Scenario[] {
  const out: Scenario[] = [];
  for (const shards of shardCounts) {
    for (const protocol of PROTOCOLS) {
      for (const size of Object.keys(BODY_SIZES) as SizeName[]) {
        for (const reuse of ['keepalive', 'newconn'] as const) {
          const name = `${protocol}-${size}-${reuse}-${shards}shard`;
          out.push({
            name,
            protocol,
            size,
            reuse,
            shards,
            method: 'GET',
            path: `/${size}`,
            uploadBytes: 0,
            expectBytes: BODY_SIZES[size],
            peersInQuick: QUICK_PEERS.has(name),
            cache: false,
            baseline: 'direct',
          });
        }
      }
      const name = `${protocol}-upload1m-keepalive-${shards}shard`;
      out.push({
        name,
        protocol,
        size: 'upload1m',
        reuse: 'keepalive',
        shards,
        method: 'POST',
        path: UPLOAD_PATH,
        uploadBytes: UPLOAD_BYTES,
        expectBytes: UPLOAD_RESPONSE,
        peersInQuick: false,
        cache: false,
        baseline: 'direct',
      });
    }
    for (const protocol of CACHE_PROTOCOLS) {
      out.push({
        name: `${protocol}-cachedcss-keepalive-${shards}shard`,
        protocol,
        size: 'cachedcss',
        reuse: 'keepalive',
        shards,
        method: 'GET',
        path: CACHED_CSS.path,
        uploadBytes: 0,
        expectBytes: CACHED_CSS.bytes,
        peersInQuick: false,
        cache: true,
        baseline: 'direct',
      });
    }
    for (const kind of ['php', 'static', 'xaccel'] as const) {
      for (const protocol of ['h1', 'h2'] as const) {
        out.push({
          name: `fcgi-${kind}-${protocol}-keepalive-${shards}shard`,
          protocol,
          size: kind,
          fastcgi: kind,
          reuse: 'keepalive',
          shards,
          method: 'GET',
          path: FASTCGI_PATHS[kind],
          uploadBytes: 0,
          expectBytes: FASTCGI_BODIES[kind],
          baseline: NGINX_FPM,
          peersInQuick: false,
          cache: false,
        });
      }
    }
  }
  return out;
}

/**
 * Picks scenarios: `quick` keeps QUICK_SET; `filter` is a comma list of names, substrings or group names (GROUPS),
 * any of which matches.
 * With both, the filter applies to the whole matrix (so --quick --scenario X runs X even outside the quick set).
 */
export function selectScenarios(opts: { quick: boolean; filter?: string; shards?: number[] }): Scenario[] {
  const all = allScenarios(opts.shards);
  if (opts.filter) {
    const parts = opts.filter.split(',').map((s) => s.trim()).filter(Boolean);
    // A group names scenario stems: each matches its `-<N>shard` variants exactly.
    const stems = parts.flatMap((p) => GROUPS[p] ?? []);
    const words = parts.filter((p) => GROUPS[p] === undefined);
    return all.filter((s) => stems.includes(s.name.replace(/-\d+shard$/, '')) || words.some((p) => s.name === p || s.name.includes(p)));
  }
  if (opts.quick) return all.filter((s) => QUICK_SET.includes(s.name));
  return all;
}
