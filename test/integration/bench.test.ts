// The bench end to end (one small HTTP/1.1 scenario through the real quiclb binary against the nginx backends),
// and the bench's HTTP/3 client against a server nobody here wrote: Debian's Caddy (quic-go).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, readdir, rm, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { H3Connection, h3Fetch } from '../../bench/lib/h3-client.ts';
import { findBin, freePort, logTail, startProcess, waitPorts } from '../../bench/lib/procs.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

function runBench(args: string[], timeoutMs: number): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['bench/run.ts', ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c));
    child.stderr.on('data', (c: Buffer) => (stderr += c));
    const timer = setTimeout(() => child.kill('SIGTERM'), timeoutMs);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

test('npm run bench: one quick HTTP/1.1 scenario writes JSON, Markdown and SVG with sane numbers', { timeout: 60_000 }, async (t) => {
  if (findBin('nginx') === undefined) return void t.skip('nginx is not installed (bench/install-peers.sh)');
  const out = await mkdtemp(join(tmpdir(), 'quiclb-bench-test-'));
  try {
    const name = 'h1-small-keepalive-1shard';
    const r = await runBench(['--quick', '--scenario', name, '--duration', '1', '--warmup', '0.2', '--no-peers', '--threads', '1', '--out', out], 50_000);
    assert.equal(r.code, 0, `bench failed:\n${r.stderr.slice(-3000)}`);
    // The progress line names the scenario, the target and how far it is.
    assert.match(r.stderr, new RegExp(`\\[\\d+/2\\] ${name} (direct|quiclb) \\d+\\.\\ds/\\d+\\.\\ds \\d+ req`));

    const files = await readdir(out);
    for (const ext of ['json', 'md', 'svg']) {
      assert.ok(files.includes(`latest.${ext}`), `latest.${ext} missing in ${files.join(', ')}`);
      assert.ok(files.some((f) => f.startsWith('bench-') && f.endsWith(`.${ext}`)), `bench-*.${ext} missing`);
    }
    const report = JSON.parse(await readFile(join(out, 'latest.json'), 'utf8'));
    assert.equal(report.scenarios.length, 1);
    const s = report.scenarios[0];
    assert.equal(s.scenario.name, name);
    assert.deepEqual(s.skipped, []);
    const byTarget = Object.fromEntries(s.results.map((x: any) => [x.target, x]));
    assert.deepEqual(Object.keys(byTarget).sort(), ['direct', 'quiclb']);
    for (const target of ['direct', 'quiclb']) {
      const m = byTarget[target].m;
      assert.ok(m.requests > 0 && m.rps > 0, `${target}: no requests`);
      assert.equal(m.errors, 0, `${target}: errors ${m.errorSamples}`);
      const l = m.latency;
      assert.ok(l.p50 > 0, `${target}: p50 ${l.p50}`);
      assert.ok(l.p50 <= l.p90 && l.p90 <= l.p99 && l.p99 <= l.p999 && l.p999 <= l.max, `${target}: percentiles out of order ${JSON.stringify(l)}`);
      assert.ok(m.clientCpu > 0, `${target}: client CPU not measured`);
    }
    assert.equal(byTarget.direct.ratio, undefined);
    const ratio = byTarget.quiclb.ratio;
    assert.ok(ratio.rps > 0, `ratio ${ratio.rps}`);
    // The ratio is computed from the two measurements of this run.
    assert.ok(Math.abs(ratio.rps - byTarget.quiclb.m.rps / byTarget.direct.m.rps) < 0.001);
    assert.ok(byTarget.quiclb.m.targetCpu > 0, 'quiclb CPU from /proc not measured');

    const md = await readFile(join(out, 'latest.md'), 'utf8');
    assert.match(md, new RegExp(`\\| ${name} \\| quiclb \\| HTTP/1.1 \\| [\\d,]+ \\| \\d+\\.\\d\\d \\|`));
    assert.match(md, new RegExp(`\\| ${name} \\| direct \\| HTTP/1.1 \\| [\\d,]+ \\| base \\|`));
    const svg = await readFile(join(out, 'latest.svg'), 'utf8');
    assert.match(svg, /^<svg /);
    assert.ok(svg.includes(name));
  } finally {
    await rm(out, { recursive: true, force: true });
  }
});

test('the bench HTTP/3 client talks to Caddy (quic-go): headers, bodies, multiplexing, upload', { timeout: 45_000 }, async (t) => {
  const caddy = findBin('caddy');
  if (caddy === undefined) return void t.skip('caddy is not installed (bench/install-peers.sh installs it)');
  const dir = await mkdtemp(join(tmpdir(), 'quiclb-caddy-h3-'));
  const port = await freePort();
  await mkdir(join(dir, 'www', 'files'), { recursive: true });
  // 300 000 bytes: many packets, more than one flow-control window update.
  const big = Buffer.alloc(300_000);
  for (let i = 0; i < big.length; i++) big[i] = (i * 7) & 0xff;
  await writeFile(join(dir, 'www', 'files', 'big.bin'), big);
  await writeFile(
    join(dir, 'Caddyfile'),
    `{
  admin off
  local_certs
  skip_install_trust
  auto_https disable_redirects
  storage file_system ${dir}/data
  servers {
    protocols h1 h2 h3
  }
}
localhost:${port} {
  tls internal
  handle /files/* {
    root * ${dir}/www
    file_server
  }
  handle {
    respond "probe={http.request.header.X-Probe} method={http.request.method} uri={http.request.uri}" 200
  }
}
`,
  );
  const proc = startProcess('caddy', caddy, ['run', '--config', join(dir, 'Caddyfile'), '--adapter', 'caddyfile'], join(dir, 'caddy.log'), {
    HOME: dir,
    XDG_DATA_HOME: join(dir, 'xdg-data'),
    XDG_CONFIG_HOME: join(dir, 'xdg-config'),
  });
  try {
    await waitPorts(proc, [port], 15_000);
    const base = { host: '127.0.0.1', port, servername: 'localhost', authority: `localhost:${port}`, timeoutMs: 10_000 };
    // The TCP listener can be up before the QUIC one: retry the first request briefly.
    let first;
    for (let i = 0; ; i++) {
      try {
        first = await h3Fetch({ ...base, path: '/hello?x=1', headers: [['x-probe', 'qpack-literal-value']], collectBody: true, connectTimeoutMs: 2000 });
        break;
      } catch (err) {
        if (i >= 5) throw new Error(`${(err as Error).message}\ncaddy log:\n${logTail(join(dir, 'caddy.log'))}`);
        await new Promise((r) => setTimeout(r, 500));
      }
    }
    assert.equal(first.status, 200);
    // Caddy decoded our QPACK request section: the header value, method and path come back in the body.
    assert.equal(first.body?.toString(), 'probe=qpack-literal-value method=GET uri=/hello?x=1');
    assert.ok(first.headers.some(([n, v]) => n === 'server' && v === 'Caddy'), JSON.stringify(first.headers));

    const conn = await H3Connection.connect({ host: '127.0.0.1', port, servername: 'localhost' });
    try {
      // Several requests in flight on one connection (streams 0, 4, 8, ...), one of them a large body.
      const rs = await Promise.all([
        conn.request({ path: '/files/big.bin', authority: base.authority, collectBody: true, timeoutMs: 10_000 }),
        ...Array.from({ length: 8 }, (_, i) =>
          conn.request({ path: `/n/${i}`, authority: base.authority, headers: [['x-probe', `p${i}`]], collectBody: true, timeoutMs: 10_000 }),
        ),
      ]);
      assert.equal(rs[0].status, 200);
      assert.equal(rs[0].bytes, big.length);
      assert.ok(rs[0].body!.equals(big), 'big body differs');
      for (let i = 0; i < 8; i++) assert.equal(rs[i + 1].body?.toString(), `probe=p${i} method=GET uri=/n/${i}`);
      // A POST with a 200 KB body in DATA frames (beyond one packet and the initial stream window's first chunk).
      const up = await conn.request({ method: 'POST', path: '/upload', authority: base.authority, body: new Uint8Array(200_000).fill(1), collectBody: true, timeoutMs: 10_000 });
      assert.equal(up.status, 200);
      assert.equal(up.body?.toString(), 'probe= method=POST uri=/upload');
    } finally {
      conn.close();
    }
  } finally {
    await proc.stop();
    await rm(dir, { recursive: true, force: true });
  }
});
