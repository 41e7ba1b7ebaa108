// The x-accel phase in a real pipeline behind the real proxy phase: a node:http backend answers like Moodle
// with $CFG->xsendfile = 'X-Accel-Redirect', and quiclb takes the response over: the file comes from a temp
// moodle.dataRoot with PHP's other fields, through the response filters, never with X-Accel-* or the
// backend's own body. Values outside the prefix or the dataroot are refused and logged; a missing file is 404.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { validateConfig } from '../../src/config/load.ts';
import { xAccelPhase } from '../../src/pipeline/phases/x-accel.ts';
import { proxyPhase } from '../../src/pipeline/phases/proxy.ts';
import type { Phase } from '../../src/pipeline/phase.ts';
import type { Logger } from '../../src/shared/logger.ts';
import { startOrigin } from '../support/origin.ts';
import { header } from '../support/memory-exchange.ts';
import { capturingLogger, headerValues, httpBackend, proxyRig, runPhases, silentLogger } from '../support/phase-rig.ts';

const base = mkdtempSync(join(tmpdir(), 'quiclb-phase-xaccel-'));
after(() => rmSync(base, { recursive: true, force: true }));
const dataRoot = join(base, 'moodledata');
const wwwRoot = join(base, 'moodle');
mkdirSync(join(dataRoot, 'filedir/ab/cd'), { recursive: true });
mkdirSync(wwwRoot);
const PDF = `%PDF-1.4 ${'x'.repeat(2000)}`;
writeFileSync(join(dataRoot, 'filedir/ab/cd/abcdef0123'), PDF);
writeFileSync(join(base, 'secret.txt'), 'SECRET outside the dataroot');

// pluginfile.php/<value>: the backend answers with `X-Accel-Redirect: <value>` (URL-decoded) and a body of its own.
const moodle = await startOrigin((req, res) => {
  const m = /^\/pluginfile\.php\/(.*)$/.exec(req.url ?? '');
  if (m === null) return void res.end('plain page');
  res.writeHead(200, [
    ['content-type', 'application/pdf'],
    ['content-disposition', 'attachment; filename="a.pdf"'],
    ['cache-control', 'private, max-age=60'],
    ['set-cookie', 'MoodleSession=s1; path=/'],
    ['x-accel-redirect', decodeURIComponent(m[1])],
    ['x-accel-buffering', 'no'],
  ]);
  res.end('PHP BODY THAT MUST NOT BE SENT');
});
after(() => moodle.close());
const port = Number(new URL(moodle.url).port);

const stamp: Phase = { name: 'stamp', response: (_ex, head) => void head.headers.push(['x-filtered', String(head.status)]) };

function phases(moodleConfig: Record<string, unknown>, logger: Logger = silentLogger, backends = [httpBackend('moodle-a', port)], routes: unknown[] = []) {
  const rig = proxyRig({ moodle: moodleConfig, loadBalancer: { backendServers: backends, routes } });
  return { rig, list: [stamp, xAccelPhase(rig.config, logger), proxyPhase(rig.config, rig.forwarder)] };
}

const pluginfile = (value: string) => `/pluginfile.php/${encodeURIComponent(value)}`;

test('x-accel: the named file is streamed from dataRoot with PHP\'s fields, through the filters; X-Accel-* and the backend body never reach the client', async () => {
  const { rig, list } = phases({ dataRoot });
  try {
    for (const method of ['GET', 'POST']) {
      const { r, ex } = await runPhases(list, { method, path: pluginfile('/dataroot/filedir/ab/cd/abcdef0123'), ...(method === 'POST' ? { bodyText: 'sesskey=1' } : {}) });
      assert.equal(r.status, 200, method);
      assert.equal(r.body.toString(), PDF, 'PHP chose the file after handling the method: a POST downloads too');
      assert.equal(header(r.headers, 'content-type'), 'application/pdf');
      assert.equal(header(r.headers, 'content-disposition'), 'attachment; filename="a.pdf"');
      assert.equal(header(r.headers, 'cache-control'), 'private, max-age=60');
      assert.deepEqual(headerValues(r, 'set-cookie'), ['MoodleSession=s1; path=/']);
      assert.equal(header(r.headers, 'content-length'), String(PDF.length));
      assert.equal(header(r.headers, 'x-accel-redirect'), undefined);
      assert.equal(header(r.headers, 'x-accel-buffering'), undefined);
      assert.deepEqual(headerValues(r, 'x-filtered'), ['200'], 'the response filters ran once, on quiclb\'s answer');
      assert.equal(ex.answeredBy, 'x-accel');
      assert.equal(ex.backend?.id, 'moodle-a');
    }
    const range = await runPhases(list, { path: pluginfile('/dataroot/filedir/ab/cd/abcdef0123'), headers: [['host', 'moodle.example.edu'], ['range', 'bytes=0-7']] });
    assert.equal(range.r.status, 206);
    assert.equal(range.r.body.toString(), '%PDF-1.4');
  } finally {
    await rig.close();
  }
});

test('x-accel: a response without X-Accel-Redirect goes through as the backend sent it', async () => {
  const { rig, list } = phases({ dataRoot });
  try {
    const { r, ex } = await runPhases(list, { path: '/course/view.php' });
    assert.equal(r.body.toString(), 'plain page');
    assert.equal(ex.answeredBy, undefined);
  } finally {
    await rig.close();
  }
});

test('x-accel: outside the prefix is 404, outside the dataroot deniedPathStatus (both logged); a missing file is 404', async () => {
  const { logger, lines } = capturingLogger('warn');
  const { rig, list } = phases({ dataRoot, deniedPathStatus: 403 }, logger);
  try {
    const other = await runPhases(list, { path: pluginfile('/var/www/secret.txt') });
    assert.equal(other.r.status, 404);
    assert.equal(other.ex.answeredBy, 'x-accel');
    for (const value of ['/dataroot/../secret.txt', '/dataroot/filedir/../../secret.txt']) {
      const { r } = await runPhases(list, { path: pluginfile(value) });
      assert.equal(r.status, 403, value);
      assert.doesNotMatch(r.body.toString(), /SECRET|PHP BODY/, value);
    }
    const missing = await runPhases(list, { path: pluginfile('/dataroot/filedir/00/00/nothing') });
    assert.equal(missing.r.status, 404);
    const refusals = lines.filter((l) => String(l.msg).startsWith('X-Accel-Redirect refused'));
    assert.deepEqual(
      refusals.map((l) => [l.xAccelRedirect, l.status, l.backend]),
      [
        ['/var/www/secret.txt', 404, 'moodle-a'],
        ['/dataroot/../secret.txt', 403, 'moodle-a'],
        ['/dataroot/filedir/../../secret.txt', 403, 'moodle-a'],
      ],
    );
    assert.match(String(refusals[0].msg), /moodle\.xAccelRedirectPrefix/);
  } finally {
    await rig.close();
  }
});

test('x-accel: with a FastCGI backend and no dataRoot every X-Accel-Redirect is 404 and a warning; with neither there is no phase', async () => {
  const { logger, lines } = capturingLogger('warn');
  // php-fpm (never connected to) makes the phase active; pluginfile.php is routed to the HTTP backend.
  const { rig, list } = phases(
    { wwwRoot },
    logger,
    [{ id: 'php-fpm', protocol: 'fastcgi', socket: join(base, 'php-fpm.sock') }, httpBackend('moodle-a', port, { group: 'web' })],
    [{ pathPrefix: '/pluginfile.php', group: 'web' }],
  );
  try {
    const { r } = await runPhases(list, { path: pluginfile('/dataroot/filedir/ab/cd/abcdef0123') });
    assert.equal(r.status, 404);
    assert.doesNotMatch(r.body.toString(), /PDF|PHP BODY/);
    assert.match(String(lines.at(-1)?.msg), /moodle\.dataRoot is not set/);
  } finally {
    await rig.close();
  }
  const config = validateConfig({ loadBalancer: { backendServers: [httpBackend('moodle-a', port)] } });
  assert.equal(xAccelPhase(config, silentLogger), undefined);
});
