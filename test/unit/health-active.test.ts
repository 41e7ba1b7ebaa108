// ActiveHealthChecker against real HTTP servers on 127.0.0.1.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import pino from 'pino';
import type { Config } from '../../src/config/types.ts';
import { validateConfig } from '../../src/config/load.ts';
import { ActiveHealthChecker } from '../../src/health/active.ts';
import { recordBackendResult } from '../../src/health/passive.ts';
import { B_HEALTHY, B_PASSIVE_FAILS, BC_HEALTH_TRANSITIONS, SharedState } from '../../src/shared/state.ts';

type LogLine = { level: number; msg: string; backend?: string; reason?: string; [k: string]: unknown };

function captureLogger(): { logger: pino.Logger; lines: LogLine[] } {
  const lines: LogLine[] = [];
  const logger = pino({ level: 'debug' }, { write: (s: string) => lines.push(JSON.parse(s) as LogLine) });
  return { logger, lines };
}

function makeConfig(backends: Array<{ id: string; port: number; healthy?: boolean }>, hc: Partial<Config['healthCheck']> = {}): Config {
  const c = validateConfig({
    server: { bindAddress: '127.0.0.1', readTimeout: 1000, writeTimeout: 1000, idleTimeout: 1000, shutdownTimeout: 1000 },
    tls: { stateDir: '/tmp' },
    quic: { enabled: false },
    loadBalancer: {
      strategy: 'round_robin',
      sessionPersistence: false,
      connectionMigration: false,
      affinityCookie: 'QUICLB',
      backendServers: backends.map((b) => ({ id: b.id, host: '127.0.0.1', port: b.port, healthy: b.healthy ?? true })),
      retryIdempotent: false,
      connectTimeout: 1000,
      backendTimeout: 1000,
    },
    healthCheck: { enabled: true, interval: 200, timeout: 200, path: '/admin/cli/healthcheck.php', expectStatus: '2xx', healthyThreshold: 2, unhealthyThreshold: 2, passiveFailureThreshold: 3 },
    moodle: { wwwRoot: 'https://moodle.example.test:8443/moodle' },
    admin: { allowFrom: ['127.0.0.0/8'] },
    logging: { level: 'silent' },
  });
  // A 50 ms round with a 200 ms timeout (the schema refuses timeout > interval; these tests want fast rounds).
  c.healthCheck = { ...c.healthCheck, intervalMs: 50, ...hc };
  return c;
}

function stateFor(config: Config): SharedState {
  const state = new SharedState();
  config.loadBalancer.backendServers.forEach((b, i) => state.initBackend(i, b.healthy));
  return state;
}

interface TestServer {
  server: http.Server;
  port: number;
  requests: http.IncomingHttpHeaders[];
  paths: string[];
}

const sockets = new Set<Socket>();
const servers: http.Server[] = [];

async function startServer(handler: (req: http.IncomingMessage, res: http.ServerResponse) => void): Promise<TestServer> {
  const requests: http.IncomingHttpHeaders[] = [];
  const paths: string[] = [];
  const server = http.createServer((req, res) => {
    requests.push(req.headers);
    paths.push(req.url ?? '');
    handler(req, res);
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  servers.push(server);
  return { server, port: (server.address() as AddressInfo).port, requests, paths };
}

function json(res: http.ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}

let okServer: TestServer;
let errServer: TestServer;
let unhealthyBodyServer: TestServer;
let hangServer: TestServer;
let closedPort: number;
let toggleServer: TestServer;
let toggleHealthy = true;

before(async () => {
  okServer = await startServer((_req, res) => json(res, 200, { status: 'healthy' }));
  errServer = await startServer((_req, res) => json(res, 503, { status: 'healthy' }));
  unhealthyBodyServer = await startServer((_req, res) => json(res, 200, { status: 'unhealthy' }));
  hangServer = await startServer(() => {
    /* never answers */
  });
  toggleServer = await startServer((_req, res) => json(res, toggleHealthy ? 200 : 500, { status: toggleHealthy ? 'healthy' : 'unhealthy' }));
  const probe = http.createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  closedPort = (probe.address() as AddressInfo).port;
  await new Promise<void>((resolve) => probe.close(() => resolve()));
});

after(async () => {
  for (const s of sockets) s.destroy();
  await Promise.all(servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
});

test('failing backends go down after unhealthyThreshold rounds, each with its reason; the good one stays up', async () => {
  const config = makeConfig([
    { id: 'ok', port: okServer.port },
    { id: 'err503', port: errServer.port },
    { id: 'bodyUnhealthy', port: unhealthyBodyServer.port },
    { id: 'hang', port: hangServer.port },
    { id: 'closed', port: closedPort },
  ]);
  const state = stateFor(config);
  const { logger, lines } = captureLogger();
  const checker = new ActiveHealthChecker({ config, state, logger });
  try {
    await checker.checkNow();
    for (let i = 0; i < 5; i++) assert.equal(state.backendGauge(i, B_HEALTHY), 1, `round 1 leaves backend ${i} up`);
    const started = performance.now();
    await checker.checkNow();
    assert.ok(performance.now() - started < 1500, 'a hanging backend costs about timeoutMs, not more');
    assert.equal(state.backendGauge(0, B_HEALTHY), 1);
    for (let i = 1; i < 5; i++) {
      assert.equal(state.backendGauge(i, B_HEALTHY), 0, `round 2 marks backend ${i} down`);
      assert.equal(state.backendCounter(i, BC_HEALTH_TRANSITIONS), 1n);
    }
    assert.equal(state.backendCounter(0, BC_HEALTH_TRANSITIONS), 0n);
    const downs = lines.filter((l) => l.msg === 'backend marked down');
    assert.equal(downs.length, 4);
    assert.ok(downs.every((l) => l.level === 40), 'down transitions log at warn');
    const reasonOf = (id: string): string | undefined => downs.find((l) => l.backend === id)?.reason;
    assert.equal(reasonOf('err503'), 'status 503');
    assert.equal(reasonOf('bodyUnhealthy'), 'body says "unhealthy"');
    assert.equal(reasonOf('hang'), 'timeout');
    assert.equal(reasonOf('closed'), 'ECONNREFUSED');
    assert.equal(downs.find((l) => l.backend === 'err503')?.consecutiveFailures, 2);
    // Third round: no new transitions while they stay down.
    await checker.checkNow();
    assert.equal(lines.filter((l) => l.msg === 'backend marked down').length, 4);
    // What the probes looked like on the wire.
    const h = okServer.requests.at(-1)!;
    assert.equal(h.host, 'moodle.example.test:8443');
    assert.equal(h['user-agent'], 'quiclb-health');
    assert.equal(okServer.paths.at(-1), '/admin/cli/healthcheck.php');
  } finally {
    await checker.stop();
  }
});

test('a downed backend recovers after healthyThreshold good rounds and its passive streak is cleared', async () => {
  toggleHealthy = false;
  const config = makeConfig([{ id: 'toggle', port: toggleServer.port }], { expectStatus: '200' });
  const state = stateFor(config);
  const { logger, lines } = captureLogger();
  const checker = new ActiveHealthChecker({ config, state, logger });
  try {
    await checker.checkNow();
    await checker.checkNow();
    assert.equal(state.backendGauge(0, B_HEALTHY), 0);
    state.setBackendGauge(0, B_PASSIVE_FAILS, 7);
    toggleHealthy = true;
    await checker.checkNow();
    assert.equal(state.backendGauge(0, B_HEALTHY), 0, 'one good round is not enough');
    await checker.checkNow();
    assert.equal(state.backendGauge(0, B_HEALTHY), 1);
    assert.equal(state.backendGauge(0, B_PASSIVE_FAILS), 0);
    assert.equal(state.backendCounter(0, BC_HEALTH_TRANSITIONS), 2n);
    const up = lines.find((l) => l.msg === 'backend marked up');
    assert.ok(up);
    assert.equal(up.level, 30, 'up transitions log at info');
    assert.equal(up.backend, 'toggle');
  } finally {
    toggleHealthy = true;
    await checker.stop();
  }
});

test('a backend marked down passively needs healthyThreshold active successes to return', async () => {
  const config = makeConfig([{ id: 'ok', port: okServer.port }], { healthyThreshold: 3 });
  const state = stateFor(config);
  const { logger } = captureLogger();
  const checker = new ActiveHealthChecker({ config, state, logger });
  try {
    await checker.checkNow();
    assert.equal(state.backendGauge(0, B_HEALTHY), 1);
    for (let i = 0; i < 3; i++) recordBackendResult(state, 0, false, 3, logger, 'ok');
    assert.equal(state.backendGauge(0, B_HEALTHY), 0);
    await checker.checkNow();
    await checker.checkNow();
    assert.equal(state.backendGauge(0, B_HEALTHY), 0, 'two successes < healthyThreshold 3');
    await checker.checkNow();
    assert.equal(state.backendGauge(0, B_HEALTHY), 1);
    assert.equal(state.backendGauge(0, B_PASSIVE_FAILS), 0);
  } finally {
    await checker.stop();
  }
});

test('start() probes on its own every intervalMs and stop() ends it', async () => {
  const config = makeConfig([
    { id: 'ok', port: okServer.port },
    { id: 'err503', port: errServer.port },
  ]);
  const state = stateFor(config);
  const { logger } = captureLogger();
  const checker = new ActiveHealthChecker({ config, state, logger });
  const before = errServer.requests.length;
  checker.start();
  try {
    const deadline = Date.now() + 3000;
    while (state.backendGauge(1, B_HEALTHY) !== 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    assert.equal(state.backendGauge(1, B_HEALTHY), 0, 'marked down by the scheduled rounds');
    assert.ok(errServer.requests.length - before >= 2);
    assert.equal(state.backendGauge(0, B_HEALTHY), 1);
  } finally {
    await checker.stop();
  }
  const afterStop = errServer.requests.length;
  await new Promise((r) => setTimeout(r, 150));
  assert.equal(errServer.requests.length, afterStop, 'no probes after stop()');
});

test('disabled: no probes, configured health kept', async () => {
  const config = makeConfig(
    [
      { id: 'err503', port: errServer.port, healthy: true },
      { id: 'ok', port: okServer.port, healthy: false },
    ],
    { enabled: false },
  );
  const state = stateFor(config);
  const { logger } = captureLogger();
  const checker = new ActiveHealthChecker({ config, state, logger });
  const seen = errServer.requests.length + okServer.requests.length;
  checker.start();
  await checker.checkNow();
  await new Promise((r) => setTimeout(r, 150));
  await checker.stop();
  assert.equal(errServer.requests.length + okServer.requests.length, seen);
  assert.equal(state.backendGauge(0, B_HEALTHY), 1);
  assert.equal(state.backendGauge(1, B_HEALTHY), 0);
});

test('disabled: a passively downed backend is re-admitted after the cool-down', async () => {
  const config = makeConfig([{ id: 'ok', port: okServer.port }], { enabled: false, passiveFailureThreshold: 2 });
  const state = stateFor(config);
  const { logger, lines } = captureLogger();
  const checker = new ActiveHealthChecker({ config, state, logger, passiveCooldownMs: 40 });
  checker.start();
  try {
    recordBackendResult(state, 0, false, 2, logger, 'ok');
    recordBackendResult(state, 0, false, 2, logger, 'ok');
    assert.equal(state.backendGauge(0, B_HEALTHY), 0);
    const deadline = Date.now() + 2000;
    while (state.backendGauge(0, B_HEALTHY) === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
    assert.equal(state.backendGauge(0, B_HEALTHY), 1);
    assert.ok(lines.some((l) => l.msg === 'backend marked up' && /cool-down/.test(l.reason ?? '')));
  } finally {
    await checker.stop();
  }
});

test('a reload (update) probes the new backend list by slot: a kept backend keeps its streak, a removed one is no longer probed', async () => {
  const config = makeConfig([
    { id: 'ok', port: okServer.port },
    { id: 'toggle', port: toggleServer.port },
  ]);
  const state = stateFor(config);
  const { logger } = captureLogger();
  const checker = new ActiveHealthChecker({ config, state, logger });
  toggleHealthy = false;
  try {
    await checker.checkNow(); // toggle: 1 failure of 2
    const okBefore = okServer.paths.length;
    // Generation 2: "ok" removed, "toggle" kept in slot 1, "err503" new in slot 2 (starting healthy).
    const next = makeConfig([
      { id: 'toggle', port: toggleServer.port },
      { id: 'err503', port: errServer.port },
    ]);
    state.initBackend(2, true);
    checker.update(next, [1, 2]);
    await checker.checkNow();
    assert.equal(okServer.paths.length, okBefore, 'the removed backend is not probed');
    assert.equal(state.backendGauge(1, B_HEALTHY), 0, 'the kept backend\'s first failure still counted: the second takes it down');
    assert.equal(state.backendGauge(2, B_HEALTHY), 1, 'the new backend needs its own unhealthyThreshold failures');
    await checker.checkNow();
    assert.equal(state.backendGauge(2, B_HEALTHY), 0);
    assert.equal(state.backendGauge(0, B_HEALTHY), 1, 'slot 0 (removed) is left alone');
  } finally {
    toggleHealthy = true;
    await checker.stop();
  }
});
