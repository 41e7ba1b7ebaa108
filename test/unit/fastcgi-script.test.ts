// The script resolver against a real directory tree made by the test.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { resolveScript, type ScriptPolicy } from '../../src/fastcgi/script.ts';

let base = '';
let root = '';
let real = '';
const policy: ScriptPolicy = { deniedPaths: ['/vendor/', 'composer.json', '/fixtures/'] };

before(() => {
  base = mkdtempSync(join(tmpdir(), 'quiclb-script-'));
  root = join(base, 'www');
  for (const d of ['course', 'mod/x.php', 'vendor/bin', 'uploads', '.git', 'lib/fixtures', 'noindex']) mkdirSync(join(root, d), { recursive: true });
  for (const f of ['index.php', 'pluginfile.php', 'course/index.php', 'course/view.php', 'vendor/bin/eval.php', 'uploads/evil.jpg', '.git/hook.php', 'lib/fixtures/x.php', 'r.php', 'mod/x.php/index.php', 'theme.css']) {
    writeFileSync(join(root, f), '<?php');
  }
  writeFileSync(join(base, 'outside.php'), '<?php');
  symlinkSync(join(base, 'outside.php'), join(root, 'escape.php'));
  symlinkSync(base, join(root, 'up'));
  real = realpathSync(root);
});
after(() => rmSync(base, { recursive: true, force: true }));

const resolve = (target: string, p: ScriptPolicy = policy) => resolveScript(root, real, target, p);

test('a .php file runs; the query is not part of the path', async () => {
  assert.deepEqual(await resolve('/course/view.php?id=4'), { kind: 'script', scriptName: '/course/view.php', scriptFilename: `${root}/course/view.php`, pathInfo: '' });
});

test('Moodle slash arguments: the first existing .php file is the script, the rest PATH_INFO (decoded, trailing slash kept)', async () => {
  assert.deepEqual(await resolve('/pluginfile.php/12/mod_resource/content/0/my%20file.pdf?forcedownload=1'), {
    kind: 'script',
    scriptName: '/pluginfile.php',
    scriptFilename: `${root}/pluginfile.php`,
    pathInfo: '/12/mod_resource/content/0/my file.pdf',
  });
  assert.equal(((await resolve('/pluginfile.php/1/a/')) as { pathInfo: string }).pathInfo, '/1/a/');
  // A directory named like a script is walked through.
  assert.equal(((await resolve('/mod/x.php/')) as { scriptName: string }).scriptName, '/mod/x.php/index.php');
});

test('directories run index.php; without the slash they redirect (query kept); no index is not found', async () => {
  assert.equal(((await resolve('/')) as { scriptName: string }).scriptName, '/index.php');
  assert.equal(((await resolve('/course/')) as { scriptName: string }).scriptName, '/course/index.php');
  assert.deepEqual(await resolve('/course?x=1'), { kind: 'redirect', location: '/course/?x=1' });
  assert.deepEqual(await resolve('/course'), { kind: 'redirect', location: '/course/' });
  assert.deepEqual(await resolve('/noindex/'), { kind: 'not-found' });
});

test('the cgi.fix_pathinfo hole: a .php path that is not a file is not found, never passed on', async () => {
  assert.deepEqual(await resolve('/uploads/evil.jpg/x.php'), { kind: 'not-found' });
  assert.deepEqual(await resolve('/missing.php'), { kind: 'not-found' });
  assert.deepEqual(await resolve('/missing.php/extra'), { kind: 'not-found' });
  assert.deepEqual(await resolve('/uploads/evil.jpg'), { kind: 'static', path: '/uploads/evil.jpg' });
  assert.deepEqual(await resolve('/theme.css'), { kind: 'static', path: '/theme.css' });
});

test('a fallback script (Moodle 4.5+ r.php routing) runs for paths matching no file, never for refused ones', async () => {
  const p = { ...policy, fallbackScript: '/r.php' };
  assert.deepEqual(await resolve('/course/1/overview', p), { kind: 'script', scriptName: '/r.php', scriptFilename: `${root}/r.php`, pathInfo: '' });
  assert.equal((await resolve('/vendor/bin/eval.php', p)).kind, 'refused');
  assert.equal((await resolve('/../outside.php', p)).kind, 'refused');
});

test('refused: traversal forms, dot-files, the deny list, symlinks out of the root', async () => {
  for (const target of ['/../outside.php', '/course/%2e%2e/%2e%2e/outside.php', '/%2E%2E/outside.php', '/course/..%2f..%2foutside.php', '/course%5c..%5coutside.php', '/index.php%00.jpg', '/course\\view.php', 'course/view.php']) {
    assert.equal((await resolve(target)).kind, 'refused', target);
  }
  // Double-encoded: decoded once it is a literal "%2e%2e" segment, which does not exist.
  assert.deepEqual(await resolve('/%252e%252e/outside.php'), { kind: 'not-found' });
  assert.deepEqual(await resolve('/.git/hook.php'), { kind: 'refused', reason: 'dot-file' });
  assert.deepEqual(await resolve('/vendor/bin/eval.php'), { kind: 'refused', reason: 'denied', rule: '/vendor/' });
  assert.deepEqual(await resolve('/lib/FIXTURES/x.php'), { kind: 'not-found' }); // case-sensitive file system: no such dir
  assert.deepEqual(await resolve('/lib/fixtures/x.php'), { kind: 'refused', reason: 'denied', rule: '/fixtures/' });
  assert.deepEqual(await resolve('/escape.php'), { kind: 'refused', reason: 'outside-root' });
  assert.deepEqual(await resolve('/up/outside.php'), { kind: 'refused', reason: 'outside-root' });
  // The deny list applies to the script, not to PATH_INFO (a user's file may be called composer.json).
  assert.equal((await resolve('/pluginfile.php/1/composer.json')).kind, 'script');
});
