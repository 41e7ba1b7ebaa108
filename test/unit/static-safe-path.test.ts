// URL paths to files under a root: every forbidden path and traversal attempt, raw, encoded, double-encoded and
// with NUL, served through serveFile the way a caller would: none may return a protected file's content.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createSafeRoot, openSafeFile, type SafePathPolicy, type SafeRoot } from '../../src/static/safe-path.ts';
import { serveFile } from '../../src/static/serve-file.ts';
import type { FrontRequest } from '../../src/shared/http-types.ts';
import { recordingResponse } from '../support/recording-response.ts';

// Moodle's nginx guide list (the default of moodle.deniedPaths).
const MOODLE_DENIED = ['/vendor/', '/node_modules/', 'composer.json', '/readme', '/README', 'readme.txt', '/upgrade.txt', '/UPGRADING.md', 'db/install.xml', '/fixtures/', '/behat/', 'phpunit.xml', '.lock', 'environment.xml'];
const WWW: SafePathPolicy = { deniedPaths: MOODLE_DENIED, denyDotFiles: true, denyPhpSource: true, deniedStatus: 404 };

let base = '';
let root: SafeRoot;
const SECRET = 'SECRET-CONTENT-must-never-be-served';
const PROTECTED = [
  '.env', '.git/config', '.git/HEAD', '.hidden/x.css', 'theme/.htaccess',
  'vendor/autoload.php', 'vendor/phpunit/phpunit/src/Util/PHP/eval-stdin.php', 'vendor/lib/style.css',
  'node_modules/pkg/index.js', 'composer.json', 'composer.lock', 'package-lock.json.lock',
  'README.md', 'README.txt', 'readme.txt', 'lib/readme_moodle.txt', 'mod/x/upgrade.txt', 'UPGRADING.md',
  'mod/forum/db/install.xml', 'lib/tests/fixtures/data.txt', 'lib/tests/behat/steps.txt', 'phpunit.xml', 'phpunit.xml.dist',
  'admin/environment.xml', 'yarn.lock', 'config.php', 'lib/setup.PHP', 'x.phtml', 'y.phar', 'z.inc',
];

before(async () => {
  base = mkdtempSync(join(tmpdir(), 'quiclb-static-'));
  const dir = join(base, 'www');
  const files = ['index.html', 'theme/styles.css', 'pix/a b.png', '.well-known/security.txt', 'lib/ok.js', ...PROTECTED];
  for (const f of files) {
    mkdirSync(join(dir, f, '..'), { recursive: true });
    writeFileSync(join(dir, f), PROTECTED.includes(f) ? SECRET : `public:${f}`);
  }
  writeFileSync(join(base, 'secret.txt'), SECRET);
  symlinkSync(join(base, 'secret.txt'), join(dir, 'link-out.txt'));
  symlinkSync(base, join(dir, 'dir-out'));
  symlinkSync(join(dir, 'theme/styles.css'), join(dir, 'link-in.css'));
  execFileSync('mkfifo', [join(dir, 'pipe.css')]);
  root = await createSafeRoot(dir);
});
after(() => rmSync(base, { recursive: true, force: true }));

function request(path: string, method = 'GET'): FrontRequest {
  return { protocol: 'HTTP/2', method, scheme: 'https', authority: 'm.test', path, headers: [], body: null, remoteAddress: '127.0.0.1', remotePort: 1, localPort: 443, connectionKey: 'c', shard: 0 };
}

/** What a caller does: open safely, serve or answer the refusal status. */
async function fetchStatic(path: string, policy = WWW): Promise<{ status: number; body: string; reason?: string }> {
  const r = await openSafeFile(root, path, policy);
  if (!r.ok) return { status: r.status, body: '', reason: r.reason };
  const { res, rec } = recordingResponse();
  await serveFile(request(path), res, r.file);
  return { status: rec.status ?? 0, body: rec.body().toString() };
}

describe('served', () => {
  test('plain files, an encoded space, a symlink that stays inside, /.well-known/', async () => {
    assert.deepEqual(await fetchStatic('/theme/styles.css?v=3'), { status: 200, body: 'public:theme/styles.css' });
    assert.deepEqual(await fetchStatic('/pix/a%20b.png'), { status: 200, body: 'public:pix/a b.png' });
    assert.deepEqual(await fetchStatic('//theme//styles.css'), { status: 200, body: 'public:theme/styles.css' });
    assert.deepEqual(await fetchStatic('/link-in.css'), { status: 200, body: 'public:theme/styles.css' });
    assert.deepEqual(await fetchStatic('/.well-known/security.txt'), { status: 200, body: 'public:.well-known/security.txt' });
  });

  test('missing files, directories and FIFOs are 404 (a FIFO does not block)', async () => {
    for (const p of ['/nope.css', '/theme/', '/theme', '/', '/pipe.css', '/theme/styles.css/x']) {
      const r = await fetchStatic(p);
      assert.equal(r.status, 404, p);
    }
  });
});

describe('refused: none returns a protected file', () => {
  test('Moodle deny list, dot-files, PHP source: every protected file, exact and case-varied', async () => {
    for (const f of PROTECTED) {
      for (const p of [`/${f}`, `/${f.toUpperCase()}`, `/${encodeURIComponent(f).replaceAll('%2F', '/')}`]) {
        const r = await fetchStatic(p);
        assert.notEqual(r.body, SECRET, p);
        assert.equal(r.status, 404, `${p}: ${r.reason}`);
      }
    }
    assert.equal((await fetchStatic('/composer.json')).reason, 'denied');
    assert.equal((await fetchStatic('/.env')).reason, 'dot-file');
    assert.equal((await fetchStatic('/config.php')).reason, 'php-source');
  });

  test('traversal in raw, percent-encoded, double-encoded, backslash and NUL forms', async () => {
    const attempts = [
      '/../secret.txt', '/theme/../../secret.txt', '/theme/./styles.css', '/./secret.txt',
      '/%2e%2e/secret.txt', '/%2E%2E/secret.txt', '/.%2e/secret.txt', '/%2e./secret.txt', '/theme/%2e%2e/%2e%2e/secret.txt',
      '/..%2fsecret.txt', '/..%2Fsecret.txt', '/theme%2f..%2f..%2fsecret.txt', '/..%5csecret.txt', '/..%5Csecret.txt',
      '/%252e%252e/secret.txt', '/%252e%252e%252fsecret.txt', '/..%252fsecret.txt', '/%25252e%25252e/secret.txt',
      '/..\\secret.txt', '/theme\\..\\..\\secret.txt',
      '/config.php%00.css', '/theme/styles.css%00', '/secret.txt%00/x', '/%00../secret.txt',
      '/link-out.txt', '/dir-out/secret.txt',
      '/%c0%ae%c0%ae/secret.txt', '/%e0%80%ae%e0%80%ae/secret.txt', '/%', '/%zz', 'secret.txt', '*',
    ];
    for (const p of attempts) {
      const r = await fetchStatic(p);
      assert.notEqual(r.body, SECRET, p);
      assert.ok(r.status === 404, `${p}: ${r.status} ${r.reason}`);
    }
    assert.equal((await fetchStatic('/link-out.txt')).reason, 'outside-root');
    assert.equal((await fetchStatic('/../secret.txt')).reason, 'dot-segment');
    assert.equal((await fetchStatic('/..%2fsecret.txt')).reason, 'encoded-separator');
    assert.equal((await fetchStatic('/config.php%00.css')).reason, 'nul');
    assert.equal((await fetchStatic('/..\\secret.txt')).reason, 'backslash');
    assert.equal((await fetchStatic('/%c0%ae%c0%ae/secret.txt')).reason, 'bad-encoding');
  });

  test('deniedStatus 403 is used for refusals, never for missing files', async () => {
    const p403 = { ...WWW, deniedStatus: 403 as const };
    assert.equal((await fetchStatic('/composer.json', p403)).status, 403);
    assert.equal((await fetchStatic('/../secret.txt', p403)).status, 403);
    assert.equal((await fetchStatic('/link-out.txt', p403)).status, 403);
    assert.equal((await fetchStatic('/nope.css', p403)).status, 404);
  });

  test('a dataRoot policy (X-Accel-Redirect) serves any name inside the root but still nothing outside it', async () => {
    const data: SafePathPolicy = { deniedPaths: [], denyDotFiles: false, denyPhpSource: false, deniedStatus: 404 };
    assert.equal((await fetchStatic('/composer.json', data)).status, 200);
    assert.equal((await fetchStatic('/.env', data)).status, 200);
    for (const p of ['/../secret.txt', '/%2e%2e/secret.txt', '/link-out.txt', '/dir-out/secret.txt', '/x%00']) {
      const r = await fetchStatic(p, data);
      assert.notEqual(r.body, SECRET, p);
      assert.equal(r.status, 404, p);
    }
  });
});
