// Every default, written the way the JSON file spells it (durations and sizes as strings). The schema
// reads its defaults from here, and `quiclb generate-config` writes defaultConfigJson(), so the two
// cannot drift apart.

export const BACKEND_DEFAULTS = {
  protocol: 'http',
  weight: 1,
  healthy: true,
  maxConnections: 0,
  group: 'default',
} as const;

export const PROXY_HEADER_NAMES = [
  'x-forwarded-for',
  'x-forwarded-proto',
  'x-forwarded-host',
  'x-forwarded-port',
  'x-real-ip',
  'forwarded',
] as const;

/**
 * What Moodle's own nginx guide denies (docs.moodle.org/en/Nginx, MDL-69333): the alternatives of its
 * `location ~ (/vendor/|/node_modules/|composer\.json|/readme|/README|readme\.txt|/upgrade\.txt|/UPGRADING\.md|
 * db/install\.xml|/fixtures/|/behat/|phpunit\.xml|\.lock|environment\.xml)` as substrings. Dot-files and PHP
 * source are refused on top of this list.
 */
export const MOODLE_DENIED_PATHS = [
  '/vendor/',
  '/node_modules/',
  'composer.json',
  '/readme',
  '/README',
  'readme.txt',
  '/upgrade.txt',
  '/UPGRADING.md',
  'db/install.xml',
  '/fixtures/',
  '/behat/',
  'phpunit.xml',
  '.lock',
  'environment.xml',
] as const;

export const DEFAULTS = {
  server: {
    httpPort: 8080,
    httpsPort: 9443,
    bindAddress: '::',
    readTimeout: '30s',
    writeTimeout: '30s',
    idleTimeout: '60s',
    maxHeaderSize: '16KiB',
    maxBodySize: 0,
    redirectHttpToHttps: false,
    allowTrace: false,
    shutdownTimeout: '10s',
    trustedProxies: [],
  },
  tls: {
    stateDir: '.quiclb-state',
  },
  quic: {
    enabled: true,
    idleTimeout: '30s',
    maxStreamsBidi: 100,
    initialMaxData: '10MiB',
    initialMaxStreamData: '1MiB',
    maxUdpPayloadSize: 1350,
    retryThreshold: 1000,
    udpBufferSize: '4MiB',
  },
  loadBalancer: {
    strategy: 'round_robin',
    sessionPersistence: true,
    connectionMigration: true,
    affinityCookie: 'QUICLB_AFFINITY',
    backendServers: [],
    routes: [],
    retryIdempotent: true,
    connectTimeout: '5s',
    backendTimeout: '60s',
  },
  healthCheck: {
    enabled: true,
    interval: '10s',
    timeout: '5s',
    path: '/admin/cli/healthcheck.php',
    expectStatus: '2xx',
    healthyThreshold: 2,
    unhealthyThreshold: 3,
    passiveFailureThreshold: 5,
  },
  moodle: {
    sessionCookie: 'MoodleSession',
    xAccelRedirectPrefix: '/dataroot/',
    deniedPaths: MOODLE_DENIED_PATHS,
    deniedPathStatus: 404,
    proxyHeaders: ['x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-host', 'x-forwarded-port', 'forwarded'],
    enableCaching: false,
  },
  cache: {
    enabled: false,
    maxSize: '256MiB',
    maxEntrySize: '8MiB',
    lockTimeout: '5s',
  },
  admin: {
    allowFrom: ['127.0.0.0/8', '::1/128'],
    port: 0,
  },
  websocket: {
    enabled: true,
    idleTimeout: '10m',
  },
  // Off by default, as nginx (gzip off) and Caddy (encode is opt-in): see README "Compression" for why.
  compression: {
    enabled: false,
    encodings: ['br', 'zstd', 'gzip'],
    minSize: '1KiB',
    types: [
      'text/html',
      'text/css',
      'text/plain',
      'text/xml',
      'text/javascript',
      'application/javascript',
      'application/json',
      'application/xml',
      'application/xhtml+xml',
      'application/rss+xml',
      'application/atom+xml',
      'application/manifest+json',
      'image/svg+xml',
    ],
    // On-the-fly levels: Brotli 4 matches gzip 6's size at about the same speed and half the memory of
    // Brotli 5; zstd 3 is zstd's own default and 2-4 times faster than gzip 6 (README "Compression").
    level: { br: 4, zstd: 3, gzip: 6 },
  },
  logging: {
    level: 'info',
    format: 'json',
    accessLog: true,
  },
  // Per client IP. A Moodle page with a cold cache is 40 to 80 requests, so the burst holds a few page
  // loads; a school behind one NAT address needs its range in allowList. Login attempts cost a password
  // hash on the backend each, hence the far smaller login bucket.
  rateLimit: {
    enabled: false,
    requestsPerSecond: 50,
    burst: 200,
    login: {
      requestsPerSecond: 1,
      burst: 20,
      paths: [{ path: '/login/index.php', methods: ['POST'] }, { path: '/login/token.php' }],
    },
    maxConnectionsPerClient: 256,
    allowList: [],
    maxClients: 65536,
    logInterval: '1m',
  },
} as const;

const EXAMPLE_BACKENDS = [
  { id: 'moodle-1', host: '127.0.0.1', port: 8081, ...BACKEND_DEFAULTS },
  { id: 'moodle-2', host: '127.0.0.1', port: 8082, ...BACKEND_DEFAULTS },
];

/** The full JSON document `quiclb generate-config` writes: every default, plus two example backends. */
export function defaultConfigJson(): Record<string, unknown> {
  const doc = structuredClone(DEFAULTS) as unknown as {
    loadBalancer: { backendServers: unknown[] };
  } & Record<string, unknown>;
  doc.loadBalancer.backendServers = structuredClone(EXAMPLE_BACKENDS);
  return doc;
}

/**
 * The document `quiclb generate-config --php-fpm SOCKET --www-root DIR` writes: every default, no backend list,
 * and the shorthand that makes quiclb Moodle's web server with php-fpm straight behind it (one FastCGI backend
 * "php-fpm" on SOCKET; static files and X-Accel-Redirect served from DIR and the dataroot).
 */
export function phpFpmConfigJson(o: { socket: string; wwwRoot: string; dataRoot?: string }): Record<string, unknown> {
  const doc = structuredClone(DEFAULTS) as unknown as { moodle: Record<string, unknown> } & Record<string, unknown>;
  doc.moodle = { phpFpmSocket: o.socket, wwwRoot: o.wwwRoot, ...(o.dataRoot === undefined ? {} : { dataRoot: o.dataRoot }), ...doc.moodle };
  return doc;
}
