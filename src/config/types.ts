// The effective configuration every other module reads. Durations are already milliseconds here;
// the JSON file spells them as "500ms" / "10s" / "2m" strings (see duration.ts).
import type { CompressionCoding } from '../shared/state.ts';

export type Strategy = 'round_robin' | 'weighted' | 'least_connections' | 'ip_hash';

/** How quiclb talks to a backend: HTTP/1.1 (undici) or FastCGI straight to php-fpm (src/fastcgi). */
export type BackendProtocol = 'http' | 'fastcgi';

export interface BackendConfig {
  id: string;
  protocol: BackendProtocol;
  /** '' for a FastCGI backend on a unix socket (then `socket` is set). */
  host: string;
  /** 0 for a FastCGI backend on a unix socket (then `socket` is set). */
  port: number;
  /** Absolute path of php-fpm's unix socket (protocol "fastcgi" only); set exactly when host/port are not. */
  socket?: string;
  weight: number;
  /** Initial health state before the first check. */
  healthy: boolean;
  /** 0 = unlimited. */
  maxConnections: number;
  /** Optional group name used by routes. Backends without a group belong to "default". */
  group: string;
}

export interface RouteConfig {
  /** Exact host match (case-insensitive, port ignored); absent = any host. */
  host?: string;
  /** Path prefix; absent = "/". */
  pathPrefix?: string;
  /** Group of backends that serves the route. */
  group: string;
}

export interface ServerConfig {
  httpPort: number;
  httpsPort: number;
  /**
   * Address(es) every listener binds. "::" (the default) is dual stack: IPv6 and IPv4-mapped clients on one
   * socket, falling back to 0.0.0.0 on a host without IPv6 (src/primary/bind-plan.ts).
   */
  bindAddress: string | string[];
  readTimeoutMs: number;
  writeTimeoutMs: number;
  idleTimeoutMs: number;
  maxHeaderSize: number;
  /** 0 = unlimited. */
  maxBodySize: number;
  redirectHttpToHttps: boolean;
  /** Forward TRACE requests (RFC 9110 §9.3.8); off: answered 405, as TRACE can echo credentials back. */
  allowTrace: boolean;
  /** Drain timeout on SIGTERM/SIGINT. */
  shutdownTimeoutMs: number;
  /** File `quiclb start` writes its process id to (removed at exit), for `quiclb reload` and init scripts; unset = none. */
  pidFile?: string;
  /**
   * CIDRs of proxies in front of quiclb (a CDN) whose X-Forwarded-For is believed when finding the client
   * address (src/shared/client-address.ts). Empty: the socket's peer is the client, whatever XFF says.
   */
  trustedProxies: string[];
}

export interface TlsConfig {
  certFile?: string;
  keyFile?: string;
  /** Where generated self-signed material and affinity state live. */
  stateDir: string;
  /** Key ring file (src/shared/key-ring.ts); unset = `<stateDir>/keyring`, created on first start. */
  keyRing?: string;
}

export interface QuicConfig {
  enabled: boolean;
  idleTimeoutMs: number;
  maxStreamsBidi: number;
  initialMaxData: number;
  initialMaxStreamData: number;
  maxUdpPayloadSize: number;
  /** New handshakes per second (across all shards) above which the primary answers with Retry. 0 = always retry. */
  retryThreshold: number;
  /** Requested SO_RCVBUF / SO_SNDBUF for the UDP socket. */
  udpBufferSize: number;
}

export interface LoadBalancerConfig {
  strategy: Strategy;
  sessionPersistence: boolean;
  connectionMigration: boolean;
  /** Name of the affinity cookie quiclb sets. */
  affinityCookie: string;
  backendServers: BackendConfig[];
  routes: RouteConfig[];
  /** Retry an idempotent request once on another backend when the first fails before any response byte. */
  retryIdempotent: boolean;
  connectTimeoutMs: number;
  /** Time allowed for the backend's response headers; exceeding it answers 504. */
  backendTimeoutMs: number;
}

export interface HealthCheckConfig {
  enabled: boolean;
  intervalMs: number;
  timeoutMs: number;
  path: string;
  /** Accepted status: "2xx", "200", "200-399". */
  expectStatus: string;
  healthyThreshold: number;
  unhealthyThreshold: number;
  /** Passive checks: consecutive 5xx responses or connection errors that mark a backend down. */
  passiveFailureThreshold: number;
}

export type ProxyHeaderName = 'x-forwarded-for' | 'x-forwarded-proto' | 'x-forwarded-host' | 'x-forwarded-port' | 'x-real-ip' | 'forwarded';

/**
 * moodle.wwwRoot is either Moodle's public URL ($CFG->wwwroot: health-check Host header, certificate check) or
 * the absolute directory of Moodle's code, the document root for FastCGI backends and static files.
 * wwwRootDirectory()/wwwRootUrl() in www-root.ts tell which.
 */
export type WwwRoot = `http://${string}` | `https://${string}` | `/${string}`;

/** Status for paths refused by moodle.deniedPaths, dot-files, PHP source and traversal attempts. */
export type DeniedPathStatus = 403 | 404;

export interface MoodleConfig {
  /** Moodle's dataroot: X-Accel-Redirect files under xAccelRedirectPrefix are served from here (FastCGI mode). */
  dataRoot?: string;
  wwwRoot?: WwwRoot;
  /** Shorthand: with no loadBalancer.backendServers, one FastCGI backend "php-fpm" on this unix socket. */
  phpFpmSocket?: string;
  /** `X-Accel-Redirect: <prefix><path>` from PHP streams dataRoot/<path> (Moodle's $CFG->xsendfilealiases). */
  xAccelRedirectPrefix: string;
  /** Substrings of URL paths never served or run (case-insensitive); default: Moodle's nginx guide list. */
  deniedPaths: string[];
  deniedPathStatus: DeniedPathStatus;
  sessionCookie: string;
  proxyHeaders: ProxyHeaderName[];
  /**
   * true turns the response cache on with its settings from `cache` (the same as cache.enabled: true);
   * what is stored is decided by the HTTP caching rules only (src/cache/README.md).
   */
  enableCaching: boolean;
}

export interface CacheConfig {
  /** The shared response cache (src/cache); moodle.enableCaching also turns it on. */
  enabled: boolean;
  /** Bound on all stored entries together (bodies and headers); least recently used entries go first. */
  maxSize: number;
  /** Largest response body stored; larger responses pass through uncached. */
  maxEntrySize: number;
  /** The store's SQLite file; absent = `cache.sqlite` in tls.stateDir. */
  path?: string;
  /** How long concurrent misses for one URL wait for the first one's backend fetch before fetching themselves. */
  lockTimeoutMs: number;
}

export interface AdminConfig {
  /** CIDR list; default loopback only. */
  allowFrom: string[];
  token?: string;
  /** Separate plain-HTTP admin port on bindAddress; 0 = served on the main ports only. */
  port: number;
}

/** The content codings quiclb can produce (one list with the counters in src/shared/state.ts). */
export type CompressionEncoding = CompressionCoding;

export interface CompressionConfig {
  /** Compress eligible responses on the fly (src/compress). */
  enabled: boolean;
  /** Server preference, best first; breaks ties between codings the client weighs equally. */
  encodings: CompressionEncoding[];
  /** Responses whose Content-Length is below this stay uncompressed (unknown length = eligible). */
  minSize: number;
  /** Media types to compress, lowercase, without parameters: "text/html" or "text/*". */
  types: string[];
  /** Per coding: Brotli quality 0..11, zstd level 1..19, gzip level 1..9. */
  level: Record<CompressionEncoding, number>;
}

export interface WebSocketConfig {
  /** Proxy WebSocket handshakes (HTTP/1.1 Upgrade, HTTP/2 and HTTP/3 extended CONNECT) to the backends. */
  enabled: boolean;
  /** A tunnel with no byte in either direction for this long is closed. */
  idleTimeoutMs: number;
}

export interface LoggingConfig {
  level: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
  format: 'json' | 'pretty';
  /** One line per request. */
  accessLog: boolean;
}

export interface LoginPathConfig {
  /** Exact path, query string excluded. */
  path: string;
  /** Methods that count (case-sensitive); absent = every method. */
  methods?: string[];
}

export interface LoginLimitConfig {
  /** The stricter bucket for login requests (they take from the general bucket too). */
  requestsPerSecond: number;
  burst: number;
  paths: LoginPathConfig[];
}

/** Per-client limits (IPv4 address, IPv6 /64), shared by all shards. Admin endpoints and health checks are never limited. */
export interface RateLimitConfig {
  enabled: boolean;
  /** Token bucket per client: sustained rate and bucket size. */
  requestsPerSecond: number;
  burst: number;
  login: LoginLimitConfig;
  /** Open TCP + QUIC connections per client; 0 = unlimited. */
  maxConnectionsPerClient: number;
  /** CIDRs never limited (a school's NAT, monitoring). */
  allowList: string[];
  /** Clients tracked at once (shared table size; the least recently seen are recycled). */
  maxClients: number;
  /** A limited client is logged at most once per this interval. */
  logIntervalMs: number;
}

export interface Config {
  server: ServerConfig;
  tls: TlsConfig;
  quic: QuicConfig;
  loadBalancer: LoadBalancerConfig;
  healthCheck: HealthCheckConfig;
  moodle: MoodleConfig;
  cache: CacheConfig;
  admin: AdminConfig;
  compression: CompressionConfig;
  websocket: WebSocketConfig;
  logging: LoggingConfig;
  rateLimit: RateLimitConfig;
}
