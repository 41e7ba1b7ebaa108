// The effective configuration every other module reads. Durations are already milliseconds here;
// the JSON file spells them as "500ms" / "10s" / "2m" strings (see duration.ts).

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
  bindAddress: string;
  readTimeoutMs: number;
  writeTimeoutMs: number;
  idleTimeoutMs: number;
  maxHeaderSize: number;
  /** 0 = unlimited. */
  maxBodySize: number;
  redirectHttpToHttps: boolean;
  /** Drain timeout on SIGTERM/SIGINT. */
  shutdownTimeoutMs: number;
}

export interface TlsConfig {
  certFile?: string;
  keyFile?: string;
  /** Where generated self-signed material and affinity state live. */
  stateDir: string;
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
  /** Accepted but not implemented yet (no caching happens). */
  enableCaching: boolean;
}

export interface AdminConfig {
  /** CIDR list; default loopback only. */
  allowFrom: string[];
  token?: string;
  /** Separate plain-HTTP admin port on bindAddress; 0 = served on the main ports only. */
  port: number;
}

export interface LoggingConfig {
  level: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
  format: 'json' | 'pretty';
  /** One line per request. */
  accessLog: boolean;
}

export interface Config {
  server: ServerConfig;
  tls: TlsConfig;
  quic: QuicConfig;
  loadBalancer: LoadBalancerConfig;
  healthCheck: HealthCheckConfig;
  moodle: MoodleConfig;
  admin: AdminConfig;
  logging: LoggingConfig;
}
