// The one schema every config goes through (zod 4). Object keys are the JSON names; duration fields
// are renamed to their `...Ms` Config names by section(). Defaults come from defaults.ts via
// .prefault(), so they are parsed (and checked) exactly like user input. Field messages say only what
// was expected; load.ts adds the path and what was got.

import { openSync, fstatSync, closeSync, statSync } from 'node:fs';
import ipaddr from 'ipaddr.js';
import { z } from 'zod';
import { MAX_BACKENDS } from '../shared/state.ts';
import type { BackendConfig, Config, WwwRoot } from './types.ts';
import { BACKEND_DEFAULTS, DEFAULTS, PROXY_HEADER_NAMES } from './defaults.ts';
import { DURATION_EXPECTED, formatDuration, formatSize, MAX_DURATION_MS, SIZE_EXPECTED, tryParseDuration, tryParseSize } from './duration.ts';
import { describeValue } from './errors.ts';
import { isDirectoryWwwRoot } from './www-root.ts';

// ---- field builders -------------------------------------------------------------------------------

const bool = () => z.boolean({ error: 'expected true or false' });

function int(min: number, max?: number) {
  const error = max === undefined ? `expected integer >= ${min}` : `expected integer ${min}..${max}`;
  const base = z.int({ error }).min(min, { error });
  return max === undefined ? base : base.max(max, { error });
}

const port = () => int(1, 65535);

function str(expected = 'non-empty string') {
  return z.string({ error: `expected ${expected}` }).min(1, { error: `expected ${expected}` });
}

function oneOf<const T extends readonly [string, ...string[]]>(values: T) {
  return z.enum(values, { error: `expected one of ${values.map((v) => JSON.stringify(v)).join(', ')}` });
}

function list<T extends z.ZodType>(item: T, max: number) {
  return z.array(item, { error: 'expected array' }).max(max, { error: `expected at most ${max} items` });
}

/** Duration in ms; `min` excludes e.g. a zero health-check interval. */
function duration(min = 0) {
  const expected = min === 0 ? DURATION_EXPECTED : `${DURATION_EXPECTED}, at least ${formatDuration(min)}`;
  return z.unknown().transform((v, ctx): number => {
    const ms = tryParseDuration(v);
    if (ms === undefined || ms < min || ms > MAX_DURATION_MS) {
      ctx.addIssue({ code: 'custom', message: `expected ${expected}`, input: v });
      return z.NEVER;
    }
    return ms;
  });
}

function size(min: number, max: number) {
  const expected = `${SIZE_EXPECTED} in ${formatSize(min)}..${formatSize(max)}`;
  return z.unknown().transform((v, ctx): number => {
    const bytes = tryParseSize(v);
    if (bytes === undefined || bytes < min || bytes > max) {
      ctx.addIssue({ code: 'custom', message: `expected ${expected}`, input: v });
      return z.NEVER;
    }
    return bytes;
  });
}

// RFC 1123 host names (underscore tolerated: container names use it) or an IP literal.
const HOSTNAME_RE = /^(?=.{1,253}$)[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?(?:\.[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?)*\.?$/i;
const isHost = (v: string): boolean => HOSTNAME_RE.test(v) || ipaddr.isValid(v);
const host = (expected = 'host name or IP address') => str(expected).refine(isHost, { error: `expected ${expected}` });

// RFC 6265 §4.1.1: cookie-name is an RFC 2616 token.
const cookieName = () =>
  str('cookie name (RFC 6265 token)').regex(/^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/, { error: 'expected cookie name (RFC 6265 token)' });

const path = () => str('path starting with "/"').startsWith('/', { error: 'expected path starting with "/"' });

const absolutePath = (expected: string) => str(expected).startsWith('/', { error: `expected ${expected}` });

/** Moodle's public URL, or the absolute directory of its code (see WwwRoot in types.ts). */
const WWW_ROOT_EXPECTED = 'URL like https://moodle.example.org or absolute directory path';
const wwwRoot = () =>
  str(WWW_ROOT_EXPECTED)
    .refine((v) => (/^https?:\/\//.test(v) ? URL.canParse(v) : v.startsWith('/')), { error: `expected ${WWW_ROOT_EXPECTED}` })
    .transform((v) => v as WwwRoot);

const ID_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

/** "2xx", "200", "200-399": what the health checker accepts as healthy. */
const EXPECT_STATUS_RE = /^(?:[1-5]xx|[1-5]\d\d|([1-5]\d\d)-([1-5]\d\d))$/;
const expectStatus = () =>
  str('status like "2xx", "200" or "200-399"').refine(
    (v) => {
      const m = EXPECT_STATUS_RE.exec(v);
      return m !== null && (m[1] === undefined || Number(m[1]) <= Number(m[2]));
    },
    { error: 'expected status like "2xx", "200" or "200-399"' },
  );

/** A CIDR, or a bare IP meaning /32 or /128; normalised to "addr/bits" so consumers parse one form. */
const cidr = () =>
  z.string({ error: 'expected CIDR like "10.0.0.0/8" or IP address' }).transform((v, ctx): string => {
    try {
      if (v.includes('/')) {
        ipaddr.parseCIDR(v);
        return v;
      }
      const addr = ipaddr.parse(v);
      return `${v}/${addr.kind() === 'ipv4' ? 32 : 128}`;
    } catch {
      ctx.addIssue({ code: 'custom', message: 'expected CIDR like "10.0.0.0/8" or IP address', input: v });
      return z.NEVER;
    }
  });

/** A positive rate such as requests per second (fractions allowed: 0.5 is one every two seconds). */
function rate() {
  const error = 'expected number > 0 and at most 1000000';
  return z.number({ error }).positive({ error }).max(1_000_000, { error });
}

// RFC 9110 §9.1: a method is a token, and case-sensitive.
const method = () =>
  str('HTTP method like "POST"').regex(/^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/, { error: 'expected HTTP method like "POST"' });

type RenameMs<T, K extends PropertyKey> = { [P in keyof T as P extends K & string ? `${P}Ms` : P]: T[P] };

/**
 * A strict object (unknown keys are errors) whose duration fields `durations` come out as `<name>Ms`.
 */
function section<S extends z.core.$ZodLooseShape, K extends keyof S & string = never>(shape: S, durations: readonly K[] = []) {
  return z
    .strictObject(shape, { error: 'expected object' })
    .transform((o) => {
      const out: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(o)) out[(durations as readonly string[]).includes(k) ? `${k}Ms` : k] = v;
      return out as RenameMs<typeof o, K>;
    });
}

// ---- sections -------------------------------------------------------------------------------------

const BIND_EXPECTED = 'IP address or host name to bind';

const D = DEFAULTS;

const server = section(
  {
    httpPort: port().prefault(D.server.httpPort),
    httpsPort: port().prefault(D.server.httpsPort),
    bindAddress: z
      .union(
        [
          host(BIND_EXPECTED),
          z
            .array(host(BIND_EXPECTED))
            .min(1, { error: `expected a list of 1 to 16 addresses (${BIND_EXPECTED})` })
            .max(16, { error: `expected a list of 1 to 16 addresses (${BIND_EXPECTED})` }),
        ],
        { error: `expected ${BIND_EXPECTED}, or a list of 1 to 16 of them` },
      )
      .prefault(D.server.bindAddress),
    readTimeout: duration().prefault(D.server.readTimeout),
    writeTimeout: duration().prefault(D.server.writeTimeout),
    idleTimeout: duration().prefault(D.server.idleTimeout),
    maxHeaderSize: size(1024, 1024 * 1024).prefault(D.server.maxHeaderSize),
    maxBodySize: size(0, Number.MAX_SAFE_INTEGER).prefault(D.server.maxBodySize),
    redirectHttpToHttps: bool().prefault(D.server.redirectHttpToHttps),
    allowTrace: bool().prefault(D.server.allowTrace),
    shutdownTimeout: duration().prefault(D.server.shutdownTimeout),
    pidFile: str('file path').optional(),
    trustedProxies: list(cidr(), 1024).prefault(() => []),
  },
  ['readTimeout', 'writeTimeout', 'idleTimeout', 'shutdownTimeout'],
);

const tls = section({
  certFile: str('path to a PEM certificate file').optional(),
  keyFile: str('path to a PEM private key file').optional(),
  stateDir: str('directory path').prefault(D.tls.stateDir),
  keyRing: str('path to the key ring file').optional(),
});

const quic = section(
  {
    enabled: bool().prefault(D.quic.enabled),
    idleTimeout: duration().prefault(D.quic.idleTimeout),
    maxStreamsBidi: int(1, 2 ** 16).prefault(D.quic.maxStreamsBidi),
    initialMaxData: size(0, 2 ** 32).prefault(D.quic.initialMaxData),
    initialMaxStreamData: size(0, 2 ** 32).prefault(D.quic.initialMaxStreamData),
    // RFC 9000 §18.2: max_udp_payload_size below 1200 is invalid; 65527 is the largest UDP payload.
    maxUdpPayloadSize: int(1200, 65527).prefault(D.quic.maxUdpPayloadSize),
    retryThreshold: int(0).prefault(D.quic.retryThreshold),
    // SO_RCVBUF / SO_SNDBUF take a C int.
    udpBufferSize: size(0, 2 ** 31 - 1).prefault(D.quic.udpBufferSize),
  },
  ['idleTimeout'],
);

const backend = z
  .strictObject(
    {
      id: str('backend id (letters, digits, ".", "_", "-"; at most 64)').regex(ID_RE, {
        error: 'expected backend id (letters, digits, ".", "_", "-"; at most 64)',
      }),
      protocol: oneOf(['http', 'fastcgi']).prefault(BACKEND_DEFAULTS.protocol),
      host: host().optional(),
      port: port().optional(),
      socket: absolutePath('absolute path of a unix socket').optional(),
      weight: int(1, 1000).prefault(BACKEND_DEFAULTS.weight),
      healthy: bool().prefault(BACKEND_DEFAULTS.healthy),
      maxConnections: int(0).prefault(BACKEND_DEFAULTS.maxConnections),
      group: str('group name').prefault(BACKEND_DEFAULTS.group),
    },
    { error: 'expected object' },
  )
  .superRefine((b, ctx) => {
    const issue = (path: string, detail: string) => ctx.addIssue({ code: 'custom', path: [path], message: detail, params: { complete: true } });
    if (b.socket !== undefined) {
      if (b.protocol !== 'fastcgi') issue('socket', `expected nothing for protocol "http" (a unix socket is for protocol "fastcgi"), got ${describeValue(b.socket)}`);
      else if (b.host !== undefined || b.port !== undefined) issue('socket', `expected either socket or host and port, got both (${describeValue(b.socket)})`);
      return;
    }
    if (b.host === undefined) issue('host', 'expected host name or IP address, got nothing');
    if (b.port === undefined) issue('port', 'expected integer 1..65535, got nothing');
  })
  // A unix-socket backend has host '' and port 0, so every BackendConfig has the same fields.
  .transform(({ id, protocol, host, port, socket, ...rest }): BackendConfig =>
    socket === undefined ? { id, protocol, host: host ?? '', port: port ?? 0, ...rest } : { id, protocol, host: '', port: 0, socket, ...rest },
  );

const route = z.strictObject(
  {
    host: host().transform((h) => h.toLowerCase()).optional(),
    pathPrefix: path().optional(),
    group: str('group name'),
  },
  { error: 'expected object' },
);

const loadBalancer = section(
  {
    strategy: oneOf(['round_robin', 'weighted', 'least_connections', 'ip_hash']).prefault(D.loadBalancer.strategy),
    sessionPersistence: bool().prefault(D.loadBalancer.sessionPersistence),
    connectionMigration: bool().prefault(D.loadBalancer.connectionMigration),
    affinityCookie: cookieName().prefault(D.loadBalancer.affinityCookie),
    // Bounded by the SharedArrayBuffer layout (one slot per backend).
    backendServers: list(backend, MAX_BACKENDS).prefault(() => []),
    routes: list(route, 1024).prefault(() => []),
    retryIdempotent: bool().prefault(D.loadBalancer.retryIdempotent),
    connectTimeout: duration(1).prefault(D.loadBalancer.connectTimeout),
    backendTimeout: duration(1).prefault(D.loadBalancer.backendTimeout),
  },
  ['connectTimeout', 'backendTimeout'],
);

const healthCheck = section(
  {
    enabled: bool().prefault(D.healthCheck.enabled),
    interval: duration(1).prefault(D.healthCheck.interval),
    timeout: duration(1).prefault(D.healthCheck.timeout),
    path: path().prefault(D.healthCheck.path),
    expectStatus: expectStatus().prefault(D.healthCheck.expectStatus),
    healthyThreshold: int(1).prefault(D.healthCheck.healthyThreshold),
    unhealthyThreshold: int(1).prefault(D.healthCheck.unhealthyThreshold),
    passiveFailureThreshold: int(1).prefault(D.healthCheck.passiveFailureThreshold),
  },
  ['interval', 'timeout'],
);

const moodle = section({
  dataRoot: absolutePath('absolute directory path').optional(),
  wwwRoot: wwwRoot().optional(),
  phpFpmSocket: absolutePath('absolute path of a unix socket').optional(),
  xAccelRedirectPrefix: path()
    .refine((v) => v.endsWith('/'), { error: 'expected path starting and ending with "/"' })
    .prefault(D.moodle.xAccelRedirectPrefix),
  deniedPaths: list(str('non-empty string'), 1024).prefault(() => [...D.moodle.deniedPaths]),
  deniedPathStatus: z.union([z.literal(403), z.literal(404)], { error: 'expected 403 or 404' }).prefault(D.moodle.deniedPathStatus),
  sessionCookie: cookieName().prefault(D.moodle.sessionCookie),
  proxyHeaders: list(oneOf(PROXY_HEADER_NAMES), PROXY_HEADER_NAMES.length).prefault(() => [...D.moodle.proxyHeaders]),
  enableCaching: bool().prefault(D.moodle.enableCaching),
});

const cache = section(
  {
    enabled: bool().prefault(D.cache.enabled),
    // At least one 256 KiB body chunk (src/cache/store-schema.ts) plus headers.
    maxSize: size(1024 * 1024, 2 ** 44).prefault(D.cache.maxSize),
    maxEntrySize: size(1, 2 ** 31 - 1).prefault(D.cache.maxEntrySize),
    path: str('file path').optional(),
    lockTimeout: duration().prefault(D.cache.lockTimeout),
  },
  ['lockTimeout'],
);

const admin = section({
  allowFrom: list(cidr(), 1024).prefault(() => [...D.admin.allowFrom]),
  token: z.string({ error: 'expected string of at least 8 characters' }).min(8, { error: 'expected string of at least 8 characters' }).optional(),
  port: int(0, 65535).prefault(D.admin.port),
});

// RFC 6838 §4.2 restricted names; "type/*" matches every subtype.
const MEDIA_TYPE_RE = /^[a-z0-9][a-z0-9!#$&^_.+-]{0,126}\/(?:\*|[a-z0-9][a-z0-9!#$&^_.+-]{0,126})$/i;
const mediaType = () =>
  str('media type like "text/html" or "text/*" (no parameters)')
    .regex(MEDIA_TYPE_RE, { error: 'expected media type like "text/html" or "text/*" (no parameters)' })
    .transform((t) => t.toLowerCase());

const compression = section({
  enabled: bool().prefault(D.compression.enabled),
  encodings: list(oneOf(['br', 'zstd', 'gzip']), 3)
    .min(1, { error: 'expected at least one of "br", "zstd", "gzip" (set compression.enabled to false for none)' })
    .prefault(() => [...D.compression.encodings]),
  minSize: size(0, 2 ** 31 - 1).prefault(D.compression.minSize),
  types: list(mediaType(), 256).prefault(() => [...D.compression.types]),
  level: section({
    // Brotli quality 0..11 (BROTLI_PARAM_QUALITY).
    br: int(0, 11).prefault(D.compression.level.br),
    // zstd 20..22 are "ultra" levels that need far more memory per stream than a proxy should spend.
    zstd: int(1, 19).prefault(D.compression.level.zstd),
    // gzip 0 would be "stored": bytes on the wire for nothing.
    gzip: int(1, 9).prefault(D.compression.level.gzip),
  }).prefault({}),
});

const websocket = section(
  {
    enabled: bool().prefault(D.websocket.enabled),
    idleTimeout: duration(1000).prefault(D.websocket.idleTimeout),
  },
  ['idleTimeout'],
);

const logging = section({
  level: oneOf(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).prefault(D.logging.level),
  format: oneOf(['json', 'pretty']).prefault(D.logging.format),
  accessLog: bool().prefault(D.logging.accessLog),
});

const loginPath = z.strictObject(
  {
    path: path().refine((p) => !p.includes('?'), { error: 'expected path without a query string (it is ignored when matching)' }),
    methods: list(method(), 32).min(1, { error: 'expected at least one method, or no methods field for every method' }).optional(),
  },
  { error: 'expected object' },
);

const login = section({
  requestsPerSecond: rate().prefault(D.rateLimit.login.requestsPerSecond),
  burst: int(1, 1_000_000).prefault(D.rateLimit.login.burst),
  paths: list(loginPath, 64).prefault(() => structuredClone(D.rateLimit.login.paths) as unknown as { path: string; methods?: string[] }[]),
});

const rateLimit = section(
  {
    enabled: bool().prefault(D.rateLimit.enabled),
    requestsPerSecond: rate().prefault(D.rateLimit.requestsPerSecond),
    burst: int(1, 1_000_000).prefault(D.rateLimit.burst),
    login: login.prefault({}),
    maxConnectionsPerClient: int(0, 1_000_000).prefault(D.rateLimit.maxConnectionsPerClient),
    allowList: list(cidr(), 1024).prefault(() => []),
    // Bounded by the shared table's layout (src/ratelimit/client-table.ts): 2^20 clients take about 80 MiB.
    maxClients: int(1024, 1 << 20).prefault(D.rateLimit.maxClients),
    logInterval: duration().prefault(D.rateLimit.logInterval),
  },
  ['logInterval'],
);

// ---- cross-field checks ---------------------------------------------------------------------------

type Ctx = z.core.$RefinementCtx<Config>;

/** `detail` is the full text after the path, "got" included; load.ts only prefixes the path. */
function fail(ctx: Ctx, path: (string | number)[], detail: string): void {
  ctx.addIssue({ code: 'custom', path, message: detail, params: { complete: true } });
}

function checkReadableFile(ctx: Ctx, path: (string | number)[], file: string): void {
  let fd: number | undefined;
  try {
    fd = openSync(file, 'r');
    if (!fstatSync(fd).isFile()) throw Object.assign(new Error('not a file'), { code: 'EISDIR' });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'EIO';
    fail(ctx, path, `expected a readable file, got ${describeValue(file)} (${code})`);
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

function checkDirectory(ctx: Ctx, path: (string | number)[], dir: string): void {
  let ok = false;
  let code = 'ENOTDIR';
  try {
    ok = statSync(dir).isDirectory();
  } catch (err) {
    code = (err as NodeJS.ErrnoException).code ?? 'EIO';
  }
  if (!ok) fail(ctx, path, `expected an existing directory, got ${describeValue(dir)} (${code})`);
}

/** FastCGI needs the code's directory (SCRIPT_FILENAME, static files) and, for X-Accel-Redirect, the dataroot. */
function checkFastCgi(c: Config, ctx: Ctx): void {
  const servers = c.loadBalancer.backendServers;
  const socket = c.moodle.phpFpmSocket;
  if (socket !== undefined && servers.length > 0 && !servers.some((b) => b.socket === socket)) {
    const entry = JSON.stringify({ id: 'php-fpm', protocol: 'fastcgi', socket });
    fail(ctx, ['moodle', 'phpFpmSocket'], `expected nothing when loadBalancer.backendServers lists backends (add ${entry} there), got ${describeValue(socket)}`);
  }
  const first = servers.findIndex((b) => b.protocol === 'fastcgi');
  const why = first >= 0 ? `loadBalancer.backendServers[${first}] uses protocol "fastcgi"` : socket !== undefined ? 'moodle.phpFpmSocket is set' : undefined;
  if (why === undefined) return;
  const www = c.moodle.wwwRoot;
  if (www === undefined || !isDirectoryWwwRoot(www)) {
    fail(ctx, ['moodle', 'wwwRoot'], `expected the absolute directory of Moodle's code because ${why}, got ${describeValue(www)}`);
  } else {
    checkDirectory(ctx, ['moodle', 'wwwRoot'], www);
  }
  if (c.moodle.dataRoot !== undefined) checkDirectory(ctx, ['moodle', 'dataRoot'], c.moodle.dataRoot);
}

/** moodle.phpFpmSocket without a backend list: one FastCGI backend "php-fpm" on that socket. */
function applyPhpFpmShorthand(c: Config): Config {
  const socket = c.moodle.phpFpmSocket;
  if (socket === undefined || c.loadBalancer.backendServers.length > 0) return c;
  const backend: BackendConfig = { id: 'php-fpm', ...BACKEND_DEFAULTS, protocol: 'fastcgi', host: '', port: 0, socket };
  return { ...c, loadBalancer: { ...c.loadBalancer, backendServers: [backend] } };
}

function crossCheck(c: Config, ctx: Ctx): void {
  checkFastCgi(c, ctx);

  const seen = new Set<string>();
  c.loadBalancer.backendServers.forEach((b, i) => {
    if (seen.has(b.id)) fail(ctx, ['loadBalancer', 'backendServers', i, 'id'], `duplicate backend id ${JSON.stringify(b.id)}`);
    seen.add(b.id);
  });

  // An empty backend list is allowed (demo mode fills it), so routes can only be checked against a real one.
  if (c.loadBalancer.backendServers.length > 0) {
    const groups = [...new Set(c.loadBalancer.backendServers.map((b) => b.group))];
    c.loadBalancer.routes.forEach((r, i) => {
      if (!groups.includes(r.group)) {
        const names = groups.map((g) => JSON.stringify(g)).join(', ');
        fail(ctx, ['loadBalancer', 'routes', i, 'group'], `expected a group some backend has (${names}), got ${JSON.stringify(r.group)}`);
      }
    });
  }

  if (c.server.httpPort === c.server.httpsPort) {
    fail(ctx, ['server', 'httpsPort'], `expected a port different from server.httpPort, got ${c.server.httpsPort}`);
  }
  if (c.admin.port !== 0 && (c.admin.port === c.server.httpPort || c.admin.port === c.server.httpsPort)) {
    fail(ctx, ['admin', 'port'], `expected 0 or a port different from server.httpPort and server.httpsPort, got ${c.admin.port}`);
  }

  const codings = new Set<string>();
  c.compression.encodings.forEach((e, i) => {
    if (codings.has(e)) fail(ctx, ['compression', 'encodings', i], `duplicate encoding ${JSON.stringify(e)}`);
    codings.add(e);
  });
  const types = new Set<string>();
  c.compression.types.forEach((t, i) => {
    if (types.has(t)) fail(ctx, ['compression', 'types', i], `duplicate media type ${JSON.stringify(t)}`);
    types.add(t);
  });

  if (c.healthCheck.timeoutMs > c.healthCheck.intervalMs) {
    const got = JSON.stringify(formatDuration(c.healthCheck.timeoutMs));
    fail(ctx, ['healthCheck', 'timeout'], `expected at most healthCheck.interval (${formatDuration(c.healthCheck.intervalMs)}), got ${got}`);
  }

  if (c.cache.maxEntrySize > c.cache.maxSize) {
    const got = JSON.stringify(formatSize(c.cache.maxEntrySize));
    fail(ctx, ['cache', 'maxEntrySize'], `expected at most cache.maxSize (${formatSize(c.cache.maxSize)}), got ${got}`);
  }

  const { certFile, keyFile } = c.tls;
  if (certFile !== undefined && keyFile === undefined) {
    fail(ctx, ['tls', 'keyFile'], 'expected a key file path because tls.certFile is set, got nothing');
  } else if (keyFile !== undefined && certFile === undefined) {
    fail(ctx, ['tls', 'certFile'], 'expected a certificate file path because tls.keyFile is set, got nothing');
  } else if (certFile !== undefined && keyFile !== undefined) {
    checkReadableFile(ctx, ['tls', 'certFile'], certFile);
    checkReadableFile(ctx, ['tls', 'keyFile'], keyFile);
  }
}

// ---- the whole document ---------------------------------------------------------------------------

export const configSchema = z
  .strictObject(
    {
      server: server.prefault({}),
      tls: tls.prefault({}),
      quic: quic.prefault({}),
      loadBalancer: loadBalancer.prefault({}),
      healthCheck: healthCheck.prefault({}),
      moodle: moodle.prefault({}),
      cache: cache.prefault({}),
      admin: admin.prefault({}),
      compression: compression.prefault({}),
      websocket: websocket.prefault({}),
      logging: logging.prefault({}),
      rateLimit: rateLimit.prefault({}),
    },
    { error: 'expected object' },
  )
  .superRefine(crossCheck)
  .transform(applyPhpFpmShorthand);

// Compile-time proof that the schema produces exactly the Config contract.
type SchemaOutput = z.output<typeof configSchema>;
const _toConfig = (c: SchemaOutput): Config => c;
const _fromConfig = (c: Config): SchemaOutput => c;
void _toConfig;
void _fromConfig;
