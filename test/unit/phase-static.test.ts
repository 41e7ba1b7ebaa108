// The static phase (FastCGI mode) in a real pipeline over a real directory tree made by the test: files under
// moodle.wwwRoot are served by quiclb (through the response filters, with validators, 304, HEAD and Range), a
// PHP script that exists goes on to the next phase with Exchange.script set, a directory without its slash is
// 301, and what is missing, hidden, denied or outside the root never goes on (404 / moodle.deniedPathStatus).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { validateConfig } from '../../src/config/load.ts';
import { Balancer } from '../../src/balancer/balancer.ts';
import { SessionTable } from '../../src/balancer/session-table.ts';
import { staticPhase } from '../../src/pipeline/phases/static.ts';
import type { Phase } from '../../src/pipeline/phase.ts';
import { SharedState } from '../../src/shared/state.ts';
import { header } from '../support/memory-exchange.ts';
import { answering, runPhases } from '../support/phase-rig.ts';

const base = mkdtempSync(join(tmpdir(), 'quiclb-phase-static-'));
after(() => rmSync(base, { recursive: true, force: true }));
const www = join(base, 'moodle');
const CSS = 'body { color: #123; }\n'.repeat(50);
const put = (rel: string, content: string) => {
  mkdirSync(join(www, rel, '..'), { recursive: true });
  writeFileSync(join(www, rel), content);
};
put('theme/boost/style.css', CSS);
put('course/view.php', '<?php echo "view";');
put('course/index.php', '<?php echo "index";');
put('pluginfile.php', '<?php echo "file";');
put('webservice/rest/doc.css', 'api docs');
put('.env', 'DB_PASSWORD=secret');
put('composer.json', '{"secret": true}');
put('lib/setup.inc', '<?php $secret = 1;');
writeFileSync(join(base, 'secret.txt'), 'outside the root');
symlinkSync(join(base, 'secret.txt'), join(www, 'theme/link.txt'));

/** php-fpm (never connected to here) serves the site; an HTTP backend serves /webservice/ alone. */
function phase(moodle: Record<string, unknown> = {}) {
  const config = validateConfig({
    moodle: { wwwRoot: www, ...moodle },
    loadBalancer: {
      backendServers: [
        { id: 'php-fpm', protocol: 'fastcgi', socket: join(base, 'php-fpm.sock') },
        { id: 'api', host: '127.0.0.1', port: 9, group: 'api' },
      ],
      routes: [{ pathPrefix: '/webservice/', group: 'api' }],
    },
  });
  const balancer = new Balancer({ lb: config.loadBalancer, sessionCookie: 'MoodleSession', state: new SharedState(), sessions: new SessionTable(undefined, 1024) });
  return staticPhase(config, balancer)!;
}

const stamp: Phase = { name: 'stamp', response: (_ex, head) => void head.headers.push(['x-filtered', String(head.status)]) };

test('static: a file under wwwRoot is served by quiclb through the response filters, with validators, 304, HEAD and Range', async () => {
  const p = phase();
  const next = answering();
  const { r, ex } = await runPhases([p, stamp, next], { path: '/theme/boost/style.css?rev=3' });
  assert.equal(r.status, 200);
  assert.equal(r.body.toString(), CSS);
  assert.equal(header(r.headers, 'content-type'), 'text/css; charset=utf-8');
  assert.equal(header(r.headers, 'content-length'), String(CSS.length));
  assert.equal(header(r.headers, 'x-filtered'), '200');
  assert.equal(ex.answeredBy, 'static');
  const etag = header(r.headers, 'etag')!;
  assert.ok(etag !== undefined && header(r.headers, 'last-modified') !== undefined);

  const revalidated = await runPhases([p, next], { path: '/theme/boost/style.css', headers: [['host', 'moodle.example.edu'], ['if-none-match', etag]] });
  assert.equal(revalidated.r.status, 304);
  assert.equal(revalidated.r.body.length, 0);

  const head = await runPhases([p, next], { method: 'HEAD', path: '/theme/boost/style.css' });
  assert.equal(head.r.status, 200);
  assert.equal(head.r.body.length, 0);

  const range = await runPhases([p, next], { path: '/theme/boost/style.css', headers: [['host', 'moodle.example.edu'], ['range', 'bytes=0-3']] });
  assert.equal(range.r.status, 206);
  assert.equal(range.r.body.toString(), 'body');
  assert.equal(header(range.r.headers, 'content-range'), `bytes 0-3/${CSS.length}`);

  const post = await runPhases([p, next], { method: 'POST', path: '/theme/boost/style.css', bodyText: 'x' });
  assert.equal(post.r.status, 405);
  assert.equal(next.reached.length, 0, 'no request for a file went on');
});

test('static: an existing PHP script goes on to the next phase with Exchange.script (index.php for a directory, PATH_INFO)', async () => {
  const p = phase();
  const next = answering('ran by php-fpm');
  const cases: Array<[string, { scriptName: string; pathInfo: string }]> = [
    ['/course/view.php?id=2', { scriptName: '/course/view.php', pathInfo: '' }],
    ['/course/', { scriptName: '/course/index.php', pathInfo: '' }],
    ['/pluginfile.php/12/mod_resource/content/0/a.pdf', { scriptName: '/pluginfile.php', pathInfo: '/12/mod_resource/content/0/a.pdf' }],
  ];
  for (const [path, want] of cases) {
    const { r, ex } = await runPhases([p, next], { method: 'POST', path, bodyText: 'a=1' });
    assert.equal(r.body.toString(), 'ran by php-fpm', path);
    const { scriptName, scriptFilename, pathInfo } = ex.script ?? {};
    assert.deepEqual({ scriptName, scriptFilename, pathInfo }, { ...want, scriptFilename: www + want.scriptName }, path);
    assert.equal(ex.answeredBy, undefined);
  }
  assert.equal(next.reached.length, cases.length);
});

test('static: a directory without its slash is 301 to it, query kept', async () => {
  const { r, ex } = await runPhases([phase(), answering()], { path: '/course?id=2' });
  assert.equal(r.status, 301);
  assert.equal(header(r.headers, 'location'), '/course/?id=2');
  assert.equal(ex.answeredBy, 'static');
});

test('static: missing files (a .php too) are 404; hidden, denied, PHP source, traversal and symlinks out are deniedPathStatus', async () => {
  const next = answering();
  const strict = phase({ deniedPathStatus: 403 });
  for (const path of ['/nope.css', '/nope.php', '/upload/x.jpg/y.php']) {
    const { r, ex } = await runPhases([strict, next], { path });
    assert.equal(r.status, 404, path);
    assert.equal(ex.answeredBy, 'static', path);
  }
  for (const path of ['/.env', '/composer.json', '/lib/setup.inc', '/theme/link.txt', '/theme/%2e%2e/%2e%2e/secret.txt', '/theme/..%2f..%2fsecret.txt']) {
    const { r } = await runPhases([strict, next], { path });
    assert.equal(r.status, 403, path);
    assert.doesNotMatch(r.body.toString(), /secret/i, path);
  }
  const refusedPost = await runPhases([strict, next], { method: 'POST', path: '/.env', bodyText: 'x=1' });
  assert.equal(refusedPost.r.status, 403);
  assert.equal(refusedPost.m.req.body?.readableFlowing, true, 'the refused request\'s body is drained');
  // With the default status, a refusal looks like a missing file.
  assert.equal((await runPhases([phase(), next], { path: '/.env' })).r.status, 404);
  assert.equal(next.reached.length, 0);
});

test('static: a route group without a FastCGI backend passes untouched; without FastCGI or a wwwRoot directory there is no phase', async () => {
  const next = answering('api');
  const { r, ex } = await runPhases([phase(), next], { path: '/webservice/rest/doc.css' });
  assert.equal(r.body.toString(), 'api', 'a file that exists there is still the HTTP backend\'s to answer');
  assert.equal(ex.script, undefined);
  const httpOnly = validateConfig({ moodle: { wwwRoot: www }, loadBalancer: { backendServers: [{ id: 'web', host: '127.0.0.1', port: 9 }] } });
  const balancer = new Balancer({ lb: httpOnly.loadBalancer, sessionCookie: 'MoodleSession', state: new SharedState(), sessions: new SessionTable(undefined, 1024) });
  assert.equal(staticPhase(httpOnly, balancer), undefined);
  const urlRoot = validateConfig({ moodle: { wwwRoot: 'https://moodle.example.edu' }, loadBalancer: { backendServers: [{ id: 'web', host: '127.0.0.1', port: 9 }] } });
  assert.equal(staticPhase(urlRoot, balancer), undefined);
});
