// Reload from the operator's side, on one running quiclb: `quiclb reload --pid-file` (server.pidFile written at
// start, removed at exit), a bad file refused with the field named while the running configuration keeps
// serving, `quiclb reload --config` refusing a bad file itself, settings applied live (weights, routes, the
// admin token, the log level), and a port change logged as "needs restart" and left as it is.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { request } from 'undici';
import { startQuiclb, BIN, ROOT, type QuiclbProcess } from '../support/quiclb-process.ts';
import { startIdBackend, type IdBackend } from '../support/id-backend.ts';
import { getJson } from '../support/http-client.ts';
import { freePort } from '../../bench/lib/procs.ts';

const execFileP = promisify(execFile);

let lb: QuiclbProcess;
let pidFile: string;
const backends: IdBackend[] = [];

before(async () => {
  for (const id of ['one', 'two']) backends.push(await startIdBackend(id));
  pidFile = path.join(await mkdtemp(path.join(tmpdir(), 'quiclb-reload-pid-')), 'quiclb.pid');
  lb = await startQuiclb({
    config: {
      server: { pidFile },
      healthCheck: { enabled: false },
      loadBalancer: {
        sessionPersistence: false,
        backendServers: backends.map((b) => ({ id: b.id, host: '127.0.0.1', port: b.port })),
      },
    },
    workers: 2,
  });
});

after(async () => {
  await lb?.stop();
  for (const b of backends) await b.close();
});

async function rewriteConfig(change: (c: any) => void): Promise<void> {
  const c = JSON.parse(await readFile(lb.configFile, 'utf8'));
  change(c);
  await writeFile(lb.configFile, JSON.stringify(c, null, 2));
}

const stats = async (): Promise<any> => (await getJson(`http://127.0.0.1:${lb.httpPort}/stats`)).body;

async function servedBy(n: number, p = '/x'): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  for (let i = 0; i < n; i++) {
    const res = await request(`http://127.0.0.1:${lb.httpPort}${p}`);
    await res.body.text();
    assert.equal(res.statusCode, 200);
    const id = String(res.headers['x-backend']);
    out.set(id, (out.get(id) ?? 0) + 1);
  }
  return out;
}

function quiclbCli(args: string[]): Promise<{ code: number; stderr: string }> {
  return execFileP(process.execPath, [BIN, ...args], { cwd: ROOT }).then(
    (r) => ({ code: 0, stderr: r.stderr }),
    (e: { code: number; stderr: string }) => ({ code: e.code, stderr: e.stderr }),
  );
}

const reloadedTo = (generation: number) => lb.waitForLog((e) => e.msg === 'configuration reloaded' && e.generation === generation);

test('server.pidFile holds the pid; `quiclb reload --pid-file` makes quiclb apply the file again', { timeout: 30_000 }, async () => {
  assert.equal((await readFile(pidFile, 'utf8')).trim(), String(lb.child.pid));
  await rewriteConfig((c) => {
    c.loadBalancer.strategy = 'weighted';
    c.loadBalancer.backendServers[0].weight = 3;
  });
  const res = await quiclbCli(['reload', '--pid-file', pidFile]);
  assert.equal(res.code, 0, res.stderr);
  assert.match(res.stderr, new RegExp(`sent SIGHUP to quiclb \\(pid ${lb.child.pid}\\)`));
  const line = await reloadedTo(2);
  assert.deepEqual(line.changed, ['loadBalancer.strategy', 'loadBalancer.backendServers[one]']);
  const s = await stats();
  assert.equal(s.config.generation, 2);
  assert.equal(s.backends[0].weight, 3);
  // Smooth weighted round robin 3:1 on each shard: of 16 requests "one" gets 12, give or take one per shard
  // (round robin, as before the reload, gives 8).
  const served = await servedBy(16);
  const one = served.get('one') ?? 0;
  assert.ok(one >= 10 && one <= 14, JSON.stringify([...served]));
});

test('a bad file is refused with the field named; the running configuration keeps serving', { timeout: 30_000 }, async () => {
  const before = await stats();
  await rewriteConfig((c) => {
    c.loadBalancer.backendServers[1].port = '80x';
  });
  lb.child.kill('SIGHUP');
  const refused = await lb.waitForLog((e) => e.msg === `configuration reload refused: loadBalancer.backendServers[1].port: expected integer 1..65535, got "80x"; the running configuration (generation 2) stays`);
  assert.equal(refused.field, 'loadBalancer.backendServers[1].port');
  assert.equal(refused.level, 50);
  const served = await servedBy(8);
  assert.deepEqual([...served.keys()].sort(), ['one', 'two'], 'both backends still serve');
  let s = await stats();
  assert.equal(s.config.generation, 2);
  assert.equal(s.config.failedReloads, before.config.failedReloads + 1);
  assert.equal(s.config.lastReloadError, 'loadBalancer.backendServers[1].port: expected integer 1..65535, got "80x"');
  const metrics = await (await request(`http://127.0.0.1:${lb.httpPort}/metrics`)).body.text();
  assert.match(metrics, /^quiclb_config_reloads_failed_total 1$/m);
  assert.match(metrics, /^quiclb_config_generation 2$/m);

  // `quiclb reload --config` validates the file itself and does not signal a bad one.
  const cli = await quiclbCli(['reload', '--config', lb.configFile]);
  assert.equal(cli.code, 2);
  assert.match(cli.stderr, /invalid config: loadBalancer\.backendServers\[1\]\.port: expected integer 1\.\.65535, got "80x"/);

  // Not JSON at all: refused the same way, named by the file and the place.
  const text = await readFile(lb.configFile, 'utf8');
  await writeFile(lb.configFile, '{ "server": ');
  lb.child.kill('SIGHUP');
  const broken = await lb.waitForLog((e) => typeof e.msg === 'string' && e.msg.startsWith('configuration reload refused') && e.field === lb.configFile);
  assert.match(String(broken.error), /invalid JSON at line 1/);
  s = await stats();
  assert.equal(s.config.failedReloads, before.config.failedReloads + 2);
  assert.equal(s.config.generation, 2);
  await writeFile(lb.configFile, text);
});

test('settings applied live: admin token, routes, log level; a port change is logged as "needs restart" and left as it is', { timeout: 30_000 }, async () => {
  const newPort = await freePort();
  await rewriteConfig((c) => {
    c.loadBalancer.backendServers[1].port = backends[1].port;
    c.loadBalancer.backendServers[1].group = 'api';
    c.loadBalancer.routes = [{ pathPrefix: '/api/', group: 'api' }];
    c.admin = { token: 'reload-secret-token' };
    c.logging.level = 'debug';
    c.server.httpPort = newPort;
  });
  const cli = await quiclbCli(['reload', '--config', lb.configFile]);
  assert.equal(cli.code, 0, cli.stderr);
  const line = await reloadedTo(3);
  assert.deepEqual(line.needsRestart, ['server.httpPort']);
  const warn = await lb.waitForLog((e) => e.generation === 3 && typeof e.msg === 'string' && e.msg.startsWith('needs restart'));
  assert.equal(warn.level, 40);
  assert.deepEqual(warn.needsRestart, ['server.httpPort']);
  assert.match(String(warn.msg), /server\.httpPort/);

  // The old port still serves; nothing listens on the new one.
  const refused = await new Promise<string>((resolve) => {
    const s = net.connect(newPort, '127.0.0.1', () => {
      s.destroy();
      resolve('connected');
    });
    s.on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? 'error'));
  });
  assert.equal(refused, 'ECONNREFUSED');
  // Routes: /api/ goes to group "api" ("two"), everything else to "one".
  assert.deepEqual([...(await servedBy(4, '/api/x')).keys()], ['two']);
  assert.deepEqual([...(await servedBy(4, '/page')).keys()], ['one']);
  // The admin token now guards /stats.
  assert.equal((await getJson(`http://127.0.0.1:${lb.httpPort}/stats`)).status, 401);
  const s = (await getJson(`http://127.0.0.1:${lb.httpPort}/stats`, { headers: { authorization: 'Bearer reload-secret-token' } })).body;
  assert.equal(s.config.generation, 3);
  assert.equal(s.config.lastReloadError, null);
  assert.deepEqual(s.config.needsRestart, ['server.httpPort'], '/stats lists what waits for a restart');
  // Debug lines now come from the shards too (the log level is live).
  await lb.waitForLog((e) => e.level === 20 && e.msg === 'configuration generation applied' && e.generation === 3);
});

test('rate limits turned on by a reload apply to the next requests (a client table sized for rateLimit.maxClients)', { timeout: 30_000 }, async () => {
  await rewriteConfig((c) => {
    c.rateLimit = { enabled: true, requestsPerSecond: 0.01, burst: 3, maxClients: 2048 };
  });
  lb.child.kill('SIGHUP');
  await reloadedTo(4);
  // One keep-alive connection: one shard, one bucket shared by all shards anyway.
  const statuses: number[] = [];
  for (let i = 0; i < 5; i++) {
    const res = await request(`http://127.0.0.1:${lb.httpPort}/limited`);
    await res.body.text();
    statuses.push(res.statusCode);
    if (res.statusCode === 429) assert.ok(Number(res.headers['retry-after']) >= 1);
  }
  assert.deepEqual(statuses, [200, 200, 200, 429, 429]);
  const s = (await getJson(`http://127.0.0.1:${lb.httpPort}/stats`, { headers: { authorization: 'Bearer reload-secret-token' } })).body;
  assert.equal(s.rateLimit.enabled, true);
  assert.equal(s.rateLimit.limited.general, 2);
  assert.equal(s.rateLimit.clients.capacity, 2048);
});

test('the pid file is removed when quiclb exits', { timeout: 30_000 }, async () => {
  assert.equal(await lb.stop(), 0);
  assert.equal(existsSync(pidFile), false);
  const res = await quiclbCli(['reload', '--pid-file', pidFile]);
  assert.equal(res.code, 1);
  assert.match(res.stderr, /does not exist: is quiclb running/);
});
