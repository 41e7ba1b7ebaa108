// The command line: generate-config (and its old spelling), check-config, and start refusing bad configs
// with one message that names the field.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, writeFile, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { BIN } from '../support/quiclb-process.ts';

function quiclb(args: string[], env: Record<string, string> = {}, cwd?: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [BIN, ...args], { env: { ...process.env, ...env }, timeout: 20_000, cwd }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

test('generate-config writes every default (to --out or stdout); check-config accepts it', async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'quiclb-cli-'));
  const out = path.join(dir, 'config.json');
  const gen = await quiclb(['generate-config', '--out', out]);
  assert.equal(gen.code, 0, gen.stderr);
  const written = JSON.parse(await readFile(out, 'utf8'));
  for (const section of ['server', 'tls', 'loadBalancer', 'healthCheck', 'moodle', 'admin', 'logging']) assert.ok(written[section], section);
  assert.equal(written.server.httpsPort, 9443);
  const stdout = await quiclb(['generate-config']);
  assert.equal(stdout.code, 0, stdout.stderr);
  assert.deepEqual(JSON.parse(stdout.stdout), written);
  const check = await quiclb(['check-config', out]);
  assert.equal(check.code, 0, check.stderr);
  assert.equal(JSON.parse(check.stdout).loadBalancer.backendServers[0].id, 'moodle-1');
  const again = await quiclb(['generate-config', '--out', out]);
  assert.notEqual(again.code, 0, 'refuses to overwrite');
});

test('generate-config --php-fpm SOCKET --www-root DIR writes the FastCGI shorthand; check-config turns it into one FastCGI backend', async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'quiclb-cli-'));
  const out = path.join(dir, 'config.json');
  const gen = await quiclb(['generate-config', '--php-fpm', '/run/php/php8.2-fpm.sock', '--www-root', dir, '--data-root', dir, '--out', out]);
  assert.equal(gen.code, 0, gen.stderr);
  const written = JSON.parse(await readFile(out, 'utf8'));
  assert.deepEqual(written.loadBalancer.backendServers, []);
  assert.equal(written.moodle.phpFpmSocket, '/run/php/php8.2-fpm.sock');
  assert.equal(written.moodle.wwwRoot, dir);
  assert.equal(written.moodle.dataRoot, dir);
  const check = await quiclb(['check-config', out]);
  assert.equal(check.code, 0, check.stderr);
  assert.deepEqual(JSON.parse(check.stdout).loadBalancer.backendServers, [
    { id: 'php-fpm', protocol: 'fastcgi', weight: 1, healthy: true, maxConnections: 0, group: 'default', socket: '/run/php/php8.2-fpm.sock' },
  ]);
  const missing = await quiclb(['generate-config', '--php-fpm', '/run/php/php8.2-fpm.sock']);
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /--php-fpm needs --www-root DIR/);
  const help = await quiclb(['--help']);
  assert.match(help.stdout, /generate-config --php-fpm SOCKET --www-root DIR/);
});

test('the old spelling --generate-config writes ./config.json and refuses to overwrite it, as --out does', async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'quiclb-cli-'));
  const first = await quiclb(['--generate-config'], {}, dir);
  assert.equal(first.code, 0, first.stderr);
  assert.equal(first.stdout, '', 'nothing on stdout');
  assert.match(first.stderr, /wrote config\.json/);
  const written = JSON.parse(await readFile(path.join(dir, 'config.json'), 'utf8'));
  assert.deepEqual(written, JSON.parse((await quiclb(['generate-config'])).stdout));
  await writeFile(path.join(dir, 'config.json'), '{"mine": true}\n');
  const again = await quiclb(['--generate-config'], {}, dir);
  assert.equal(again.code, 2);
  assert.match(again.stderr, /^quiclb: config\.json exists; not overwriting it\n$/);
  assert.equal(await readFile(path.join(dir, 'config.json'), 'utf8'), '{"mine": true}\n', 'left alone');
  // An explicit --out still wins over the old default.
  const out = path.join(dir, 'other.json');
  assert.equal((await quiclb(['--generate-config', '--out', out], {}, dir)).code, 0);
  assert.deepEqual(JSON.parse(await readFile(out, 'utf8')), written);
});

test('bad configs exit non-zero with one message naming the field', async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'quiclb-cli-'));
  const cases: Array<[unknown, RegExp]> = [
    [{ loadBalancer: { backendServers: [{ id: 'a', host: 'h', port: 80 }, { id: 'b', host: 'h', port: '80x' }] } },
      /loadBalancer\.backendServers\[1\]\.port: expected integer 1\.\.65535, got "80x"/],
    [{ server: { htpPort: 1 } }, /server\.htpPort: unknown field/],
    [{ loadBalancer: { backendServers: [{ id: 'a', host: 'h', port: 80 }, { id: 'a', host: 'h', port: 81 }] } },
      /loadBalancer\.backendServers\[1\]\.id: duplicate backend id "a"/],
    [{ tls: { certFile: '/nonexistent/cert.pem', keyFile: '/nonexistent/key.pem' } }, /tls\.certFile/],
  ];
  for (const [i, [config, message]] of cases.entries()) {
    const file = path.join(dir, `bad-${i}.json`);
    await writeFile(file, JSON.stringify(config));
    for (const args of [['check-config', file], ['start', '--config', file], ['-config', file]]) {
      const res = await quiclb(args);
      assert.notEqual(res.code, 0, `${args.join(' ')} should fail`);
      assert.match(res.stderr, message);
      assert.equal(res.stderr.trim().split('\n').length, 1, `one line: ${res.stderr}`);
    }
  }
});

test('BACKEND_SERVERS and BIND_ADDRESS override the file', async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'quiclb-cli-'));
  const file = path.join(dir, 'c.json');
  await writeFile(file, '{}');
  const out = await quiclb(['check-config', file], { BACKEND_SERVERS: 'http://10.1.1.1:8080,http://10.1.1.2', BIND_ADDRESS: '127.0.0.1:8088' });
  assert.equal(out.code, 0, out.stderr);
  const cfg = JSON.parse(out.stdout);
  assert.deepEqual(cfg.loadBalancer.backendServers.map((b: { host: string; port: number }) => `${b.host}:${b.port}`), ['10.1.1.1:8080', '10.1.1.2:80']);
  assert.equal(cfg.server.bindAddress, '127.0.0.1');
  assert.equal(cfg.server.httpPort, 8088);
  const bad = await quiclb(['check-config', file], { BACKEND_SERVERS: 'foo' });
  assert.notEqual(bad.code, 0);
  assert.match(bad.stderr, /BACKEND_SERVERS/);
});
