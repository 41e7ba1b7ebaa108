// The effective configuration every other module reads. Durations are already milliseconds here;
// the JSON file spells them as "500ms" / "10s" / "2m" strings (see duration.ts).

export type Strategy = 'round_robin' | 'weighted' | 'least_connections' | 'ip_hash';

export interface BackendConfig {
  id: string;
  host: string;
  port: number;
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
  /** Drain timeout on SIGTERM/SIGINT. */
  shutdownTimeoutMs: number;
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

export interface MoodleConfig {
  dataRoot?: string;
  wwwRoot?: string;
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
