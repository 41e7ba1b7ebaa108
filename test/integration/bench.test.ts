// The bench end to end (one small HTTP/1.1 scenario through the real quiclb binary against the nginx backends,
// with our own client; then HTTP/1.1 with wrk and HTTP/2 with h2load against quiclb and node15, with --half-peak),
// the idle-connection memory mode, the CPU-profile summarizer, and the bench's HTTP/3 client against a server
// nobody here wrote: Debian's Caddy (quic-go).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, readdir, rm, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { H3Connection, h3Fetch } from '../../bench/lib/h3-client.ts';
import { summarizeProfile, formatSummaries, findProfiles } from '../../bench/lib/cpuprofile.ts';
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
    const r = await runBench(['--quick', '--scenario', name, '--duration', '1', '--warmup', '0.2', '--no-peers', '--generator', 'own', '--threads', '1', '--out', out], 50_000);
    assert.equal(r.code, 0, `bench failed:\n${r.stderr.slice(-3000)}`);
    // The progress line names the scenario, the target, the load generator and how far it is.
    assert.match(r.stderr, new RegExp(`\\[\\d+/2\\] ${name} (direct|quiclb) own undici \\d+\\.\\ds/\\d+\\.\\ds \\d+ req`));

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
      assert.equal(m.generator, 'own undici');
    }
    assert.equal(byTarget.direct.ratio, undefined);
    const ratio = byTarget.quiclb.ratio;
    assert.ok(ratio.rps > 0, `ratio ${ratio.rps}`);
    // The ratio is computed from the two measurements of this run.
    assert.ok(Math.abs(ratio.rps - byTarget.quiclb.m.rps / byTarget.direct.m.rps) < 0.001);
    assert.ok(byTarget.quiclb.m.targetCpu > 0, 'quiclb CPU from /proc not measured');
    const q = byTarget.quiclb.m;
    assert.ok(Math.abs(q.rpsPerTargetCore - q.rps / q.targetCpu) < 0.01, `per core ${q.rpsPerTargetCore} != ${q.rps} / ${q.targetCpu}`);
    assert.ok(q.targetRssBytes > 10 * 1048576, `quiclb RSS ${q.targetRssBytes}`);
    assert.ok(q.primaryCpu !== undefined && q.primaryCpu >= 0 && q.primaryCpu <= q.targetCpu + 0.05, `primary ${q.primaryCpu} of ${q.targetCpu}`);
    assert.deepEqual(report.memory.map((x: any) => [x.workers, x.target]), [[1, 'quiclb']]);

    const md = await readFile(join(out, 'latest.md'), 'utf8');
    assert.match(md, new RegExp(`\\| ${name} \\| quiclb \\| HTTP/1.1 \\| own undici \\| [\\d,]+ \\| \\d+\\.\\d\\d \\|`));
    assert.match(md, new RegExp(`\\| ${name} \\| direct \\| HTTP/1.1 \\| own undici \\| [\\d,]+ \\| base \\|`));
    assert.match(md, /\| req\/s per LB core \|/);
    const svg = await readFile(join(out, 'latest.svg'), 'utf8');
    assert.match(svg, /^<svg /);
    assert.ok(svg.includes(name));
  } finally {
    await rm(out, { recursive: true, force: true });
  }
});

test('npm run bench -- --scenario cache: the cached stylesheet through quiclb+cache and nginx+cache, every request a hit', { timeout: 120_000 }, async (t) => {
  if (findBin('nginx') === undefined) return void t.skip('nginx is not installed (bench/install-peers.sh)');
  const out = await mkdtemp(join(tmpdir(), 'quiclb-bench-test-'));
  try {
    const name = 'h1-cachedcss-keepalive-1shard';
    const r = await runBench(['--scenario', name, '--duration', '1', '--warmup', '0.3', '--peers', 'nginx', '--generator', 'own', '--threads', '1', '--out', out], 110_000);
    assert.equal(r.code, 0, `bench failed:\n${r.stderr.slice(-3000)}`);
    const report = JSON.parse(await readFile(join(out, 'latest.json'), 'utf8'));
    const s = report.scenarios[0];
    assert.equal(s.scenario.name, name);
    assert.equal(s.scenario.cache, true);
    assert.deepEqual(s.skipped, []);
    const byTarget = Object.fromEntries(s.results.map((x: any) => [x.target, x]));
    assert.deepEqual(Object.keys(byTarget).sort(), ['direct', 'nginx+cache', 'quiclb+cache']);
    for (const target of ['quiclb+cache', 'nginx+cache']) {
      const m = byTarget[target].m;
      assert.ok(m.requests > 0 && m.errors === 0, `${target}: ${m.requests} requests, errors ${m.errorSamples}`);
      // Hits only: the backend nginx is almost idle while the caches answer (the warm-up made the one miss).
      assert.ok(m.backendCpu < 0.05, `${target}: backend cores ${m.backendCpu}`);
    }
    const md = await readFile(join(out, 'latest.md'), 'utf8');
    assert.match(md, /## Cached stylesheet/);
    assert.match(md, new RegExp(`\\| ${name} \\| [\\d,]+ \\| [\\d,]+ \\| [\\d,]+ \\| \\d+\\.\\d\\d \\|`));
  } finally {
    await rm(out, { recursive: true, force: true });
  }
});

test('npm run bench: the FastCGI scenarios run quiclb and nginx + php-fpm on one php-fpm pool and report the ratio', { timeout: 120_000 }, async (t) => {
  if (findBin('nginx') === undefined) return void t.skip('nginx is not installed (bench/install-peers.sh)');
  const out = await mkdtemp(join(tmpdir(), 'quiclb-bench-test-'));
  try {
    const names = ['fcgi-php-h1-keepalive-1shard', 'fcgi-static-h1-keepalive-1shard', 'fcgi-xaccel-h1-keepalive-1shard'];
    const r = await runBench(['--scenario', names.join(','), '--duration', '1', '--warmup', '0.2', '--no-peers', '--generator', 'own', '--threads', '1', '--out', out], 110_000);
    assert.equal(r.code, 0, `bench failed:\n${r.stderr.slice(-3000)}`);
    const report = JSON.parse(await readFile(join(out, 'latest.json'), 'utf8'));
    assert.deepEqual(report.scenarios.map((x: any) => x.scenario.name), names);
    for (const s of report.scenarios) {
      assert.deepEqual(s.skipped, [], `${s.scenario.name}: ${JSON.stringify(s.skipped)}`);
      const byTarget = Object.fromEntries(s.results.map((x: any) => [x.target, x]));
      assert.deepEqual(Object.keys(byTarget), ['nginx+php-fpm', 'quiclb'], s.scenario.name);
      for (const x of s.results) {
        // Every response had the expected size (a PHP page, a static file, the X-Accel-Redirect file).
        assert.ok(x.m.requests > 0 && x.m.errors === 0, `${s.scenario.name} ${x.target}: ${x.m.requests} requests, ${x.m.errorSamples}`);
      }
      assert.equal(byTarget['nginx+php-fpm'].ratio, undefined);
      assert.ok(Math.abs(byTarget.quiclb.ratio.rps - byTarget.quiclb.m.rps / byTarget['nginx+php-fpm'].m.rps) < 0.001);
      assert.ok(byTarget.quiclb.m.backendCpu > 0 || s.scenario.fastcgi === 'static', `${s.scenario.name}: php-fpm CPU measured`);
    }
    const md = await readFile(join(out, 'latest.md'), 'utf8');
    assert.match(md, /\| fcgi-php-h1-keepalive-1shard \| nginx\+php-fpm \| HTTP\/1\.1 \| own undici \| [\d,]+ \| base \|/);
    assert.match(md, /\| fcgi-xaccel-h1-keepalive-1shard \| quiclb \| HTTP\/1\.1 \| own undici \| [\d,]+ \| \d+\.\d\d \|/);
    assert.match(md, /FastCGI scenarios \(fcgi-\*\): the baseline is nginx \+ php-fpm/);
  } finally {
    await rm(out, { recursive: true, force: true });
  }
});

test('npm run bench with wrk and h2load: HTTP/1.1 and HTTP/2 rows for quiclb and node15, per-core figures and --half-peak', { timeout: 240_000 }, async (t) => {
  for (const bin of ['nginx', 'wrk', 'h2load']) if (findBin(bin) === undefined) return void t.skip(`${bin} is not installed`);
  const out = await mkdtemp(join(tmpdir(), 'quiclb-bench-test-'));
  try {
    const h1 = 'h1-small-keepalive-1shard';
    const h2 = 'h2-small-keepalive-1shard';
    const r = await runBench(['--scenario', `${h1},${h2}`, '--duration', '1', '--warmup', '0.2', '--peers', 'node15', '--half-peak', '--threads', '1', '--out', out], 220_000);
    assert.equal(r.code, 0, `bench failed:\n${r.stderr.slice(-3000)}`);
    // External tools report their count at the end: the progress line then names the tool and the count.
    assert.match(r.stderr, new RegExp(`\\[\\d+/12\\] ${h1} quiclb wrk \\d+\\.\\ds/\\d+\\.\\ds \\d+ req`));
    assert.match(r.stderr, new RegExp(`\\[\\d+/12\\] ${h2} node15 h2load \\d+\\.\\ds/\\d+\\.\\ds \\d+ req`));
    const report = JSON.parse(await readFile(join(out, 'latest.json'), 'utf8'));
    assert.deepEqual(report.scenarios.map((x: any) => x.scenario.name), [h1, h2]);
    const want: Record<string, Record<string, [string, string, string]>> = {
      // target: [protocol, closed-loop generator, half-peak generator]
      [h1]: { direct: ['h1', 'wrk', 'h2load --h1'], quiclb: ['h1', 'wrk', 'h2load --h1'], node15: ['h1', 'wrk', 'h2load --h1'] },
      [h2]: { direct: ['h1tls', 'wrk', 'h2load --h1'], quiclb: ['h2', 'h2load', 'h2load'], node15: ['h2', 'h2load', 'h2load'] },
    };
    for (const s of report.scenarios) {
      assert.deepEqual(s.skipped, [], `${s.scenario.name}: ${JSON.stringify(s.skipped)}`);
      assert.deepEqual(s.results.map((x: any) => x.target), ['direct', 'quiclb', 'node15']);
      for (const x of s.results) {
        const [protocol, gen, halfGen] = want[s.scenario.name][x.target];
        const what = `${s.scenario.name} ${x.target}`;
        assert.equal(x.protocol, protocol, what);
        for (const [m, g] of [[x.m, gen], [x.halfPeak, halfGen]] as const) {
          assert.equal(m.generator, g, what);
          assert.ok(m.requests > 0 && m.rps > 0, `${what} ${g}: no requests`);
          assert.equal(m.errors, 0, `${what} ${g}: ${m.errorSamples}`);
          const l = m.latency;
          assert.ok(l.p50 > 0 && l.p50 <= l.p90 && l.p90 <= l.p99 && l.p99 <= l.p999 && l.p999 <= l.max, `${what} ${g}: ${JSON.stringify(l)}`);
          assert.ok(m.clientCpu > 0, `${what} ${g}: the tool's CPU was not measured`);
        }
        // Half of the closed-loop peak, asked of h2load as --rps per client.
        assert.equal(x.halfPeak.offeredRps, x.m.rps / 2, what);
        if (x.target === 'direct') continue;
        assert.ok(x.m.targetCpu > 0, `${what}: target CPU not measured`);
        assert.ok(Math.abs(x.m.rpsPerTargetCore - x.m.rps / x.m.targetCpu) < 0.01, what);
        assert.ok(x.m.targetRssBytes > 10 * 1048576, `${what}: RSS ${x.m.targetRssBytes}`);
      }
    }
    assert.deepEqual(report.memory.map((x: any) => x.target).sort(), ['node15', 'quiclb']);
    const md = await readFile(join(out, 'latest.md'), 'utf8');
    // req/s, vs direct, vs node15, LB cores, req/s per LB core, per core vs node15
    assert.match(md, new RegExp(`\\| ${h1} \\| quiclb \\| HTTP/1.1 \\| wrk \\| [\\d,]+ \\| \\d+\\.\\d\\d \\| \\d+\\.\\d\\d \\| \\d+\\.\\d\\d \\| [\\d,]+ \\| \\d+\\.\\d\\d \\|`));
    assert.match(md, new RegExp(`\\| ${h2} \\| node15 \\| HTTP/2 \\| h2load \\| [\\d,]+ \\| \\d+\\.\\d\\d \\|  \\| \\d+\\.\\d\\d \\| [\\d,]+ \\|  \\|`));
    assert.match(md, /## Latency at half of peak/);
    assert.match(md, new RegExp(`\\| ${h2} \\| quiclb \\| HTTP/2 \\| h2load \\| [\\d,]+ \\| [\\d,]+ \\| [\\d,]+ \\| [\\d.]+ \\|.*\\| (yes|no) \\|`));
  } finally {
    await rm(out, { recursive: true, force: true });
  }
});

test('npm run bench -- --idle-conns: holds idle HTTP/1.1, HTTP/2 and HTTP/3 connections to quiclb and reports its RSS', { timeout: 120_000 }, async (t) => {
  if (findBin('nginx') === undefined) return void t.skip('nginx is not installed (bench/install-peers.sh)');
  const out = await mkdtemp(join(tmpdir(), 'quiclb-bench-test-'));
  try {
    const r = await runBench(['--idle-conns', '--idle-h1', '60', '--idle-h2', '12', '--idle-h3', '8', '--threads', '1', '--out', out], 110_000);
    assert.equal(r.code, 0, `bench failed:\n${r.stderr.slice(-3000)}`);
    const report = JSON.parse(await readFile(join(out, 'latest-idle.json'), 'utf8'));
    assert.deepEqual(report.failures, []);
    assert.deepEqual(
      report.stages.map((x: any) => [x.h1, x.h2, x.h3]),
      [[0, 0, 0], [0, 0, 0], [60, 0, 0], [60, 12, 0], [60, 12, 8], [60, 12, 8]],
    );
    for (const x of report.stages) assert.ok(x.rssBytes > 10 * 1048576, JSON.stringify(x));
    // The headline is the last reading (all idle a while), the one before it is right after the last opened.
    assert.equal(report.addedBytes, report.stages[5].rssBytes - report.stages[1].rssBytes);
    assert.equal(report.addedAtOpenBytes, report.stages[4].rssBytes - report.stages[1].rssBytes);
    assert.ok(report.notes.some((n: string) => n.includes('RLIMIT_NOFILE')), JSON.stringify(report.notes));
    const md = await readFile(join(out, 'latest-idle.md'), 'utf8');
    assert.match(md, /\*\*Added by the idle connections: -?[\d.]+ MiB = -?[\d.]+ MB\*\*/);
  } finally {
    await rm(out, { recursive: true, force: true });
  }
});

test('the CPU-profile summary finds the hot function of a real --cpu-prof profile, and keeps only samples inside the windows', { timeout: 30_000 }, async () => {
  const dir = await mkdtemp(join(tmpdir(), 'quiclb-cpuprof-'));
  try {
    const script = 'function hotLoop(ms) { const end = Date.now() + ms; let x = 0; while (Date.now() < end) x += Math.sqrt(x + 1); return x; } hotLoop(300);';
    const code = await new Promise<number | null>((resolve) => {
      const c = spawn(process.execPath, ['--cpu-prof', `--cpu-prof-dir=${dir}`, '-e', script], { stdio: 'ignore' });
      c.on('close', resolve);
    });
    assert.equal(code, 0);
    const files = findProfiles(dir);
    assert.equal(files.length, 1);
    const whole = summarizeProfile(files[0]);
    assert.equal(whole.thread, 0);
    assert.ok(whole.functions.length > 0);
    assert.match(whole.functions[0].key, /^hotLoop /, formatSummaries([whole], 5));
    const text = formatSummaries([whole], 5);
    assert.match(text, /thread 0 \(main: the primary\), whole run/);
    assert.match(text, /hotLoop \[eval\]:1/);
    // A window before the process started holds no sample.
    const none = summarizeProfile(files[0], [[0, 1]]);
    assert.equal(none.totalUs, 0);
    assert.equal(none.windows, 1);
  } finally {
    await rm(dir, { recursive: true, force: true });
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
