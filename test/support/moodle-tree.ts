// A Moodle-like tree for quiclb's FastCGI mode, built per test run in a temp dir: wwwRoot (the PHP fixtures of
// test/fixtures/php and test/fixtures/fastcgi, static files of the usual types, and files that must never be
// served: dot-files, Moodle's denied paths, PHP source, symlinks leading out), a dataRoot with a multi-MB file in
// filedir/ for X-Accel-Redirect, and an `outside` directory beside them holding secrets that traversal must not reach.
import { randomBytes } from 'node:crypto';
import { cp, mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { FASTCGI_FIXTURES_DIR, PHP_FIXTURES_DIR } from './php-fpm-pools.ts';

export interface StaticFile {
  path: string;
  body: Buffer;
  type: string;
}

export interface MoodleTree {
  dir: string;
  wwwRoot: string;
  dataRoot: string;
  outside: string;
  /** Served by quiclb itself, with the Content-Type it must carry. */
  statics: StaticFile[];
  /** Files that exist (under wwwRoot, or reachable by traversal or symlink) whose content must never be sent. */
  forbidden: Array<{ path: string; marker: string }>;
  /** An 8 MiB file under dataRoot, named as Moodle's filedir names them (relative to dataRoot). */
  xaccel: { file: string; body: Buffer };
  /** A secret under `outside`, beside dataRoot: ../outside/secret.txt from the dataroot. */
  outsideSecret: string;
  remove(): Promise<void>;
}

async function put(file: string, data: string | Buffer): Promise<void> {
  await mkdir(dirname(file), { recursive: true });
  await writeFile(file, data);
}

export async function buildMoodleTree(): Promise<MoodleTree> {
  const dir = await mkdtemp(join(tmpdir(), 'quiclb-moodle-'));
  const wwwRoot = join(dir, 'moodle');
  const dataRoot = join(dir, 'moodledata');
  const outside = join(dir, 'outside');
  await cp(PHP_FIXTURES_DIR, wwwRoot, { recursive: true });
  await cp(FASTCGI_FIXTURES_DIR, wwwRoot, { recursive: true });

  const statics: StaticFile[] = [
    { path: '/theme/boost/style/moodle.css', body: Buffer.from('body { color: #123; }\n'.repeat(200)), type: 'text/css; charset=utf-8' },
    { path: '/lib/javascript/app.js', body: Buffer.from('console.log("quiclb");\n'.repeat(100)), type: 'text/javascript; charset=utf-8' },
    { path: '/pix/logo.png', body: Buffer.concat([Buffer.from('89504e470d0a1a0a', 'hex'), randomBytes(5000)]), type: 'image/png' },
    { path: '/pix/icon.svg', body: Buffer.from('<svg xmlns="http://www.w3.org/2000/svg"/>\n'), type: 'image/svg+xml' },
    { path: '/lib/fonts/font.woff2', body: randomBytes(20_000), type: 'font/woff2' },
    { path: '/files/manual.pdf', body: Buffer.concat([Buffer.from('%PDF-1.4\n'), randomBytes(30_000)]), type: 'application/pdf' },
    { path: '/files/big.bin', body: randomBytes(3 * 1024 * 1024 + 17), type: 'application/octet-stream' },
    { path: '/files/with space.txt', body: Buffer.from('a file name with a space\n'), type: 'text/plain; charset=utf-8' },
    { path: '/.well-known/security.txt', body: Buffer.from('Contact: mailto:security@example.edu\n'), type: 'text/plain; charset=utf-8' },
  ];
  for (const f of statics) await put(join(wwwRoot, f.path), f.body);

  const forbidden: Array<{ path: string; marker: string }> = [];
  let n = 0;
  const deny = async (path: string, fileContent?: (marker: string) => string): Promise<void> => {
    const marker = `FORBIDDEN-CONTENT-${++n}`;
    await put(join(wwwRoot, path), fileContent === undefined ? `${marker}\n` : fileContent(marker));
    forbidden.push({ path, marker });
  };
  await deny('/.git/config');
  await deny('/.env');
  await deny('/.htaccess');
  await deny('/vendor/autoload.js');
  await deny('/lib/vendor/x.txt');
  await deny('/node_modules/pkg/index.js');
  await deny('/composer.json');
  await deny('/composer.lock');
  await deny('/readme.txt');
  await deny('/README.md');
  await deny('/README');
  await deny('/mod/forum/README.txt');
  await deny('/upgrade.txt');
  await deny('/UPGRADING.md');
  await deny('/mod/forum/db/install.xml');
  await deny('/lib/tests/fixtures/data.txt');
  await deny('/lib/tests/behat/steps.txt');
  await deny('/phpunit.xml');
  await deny('/phpunit.xml.dist');
  await deny('/admin/environment.xml');
  await deny('/yarn.lock');
  await deny('/lib/setup.inc');
  await deny('/lib/legacy.phtml');
  await deny('/lib/tool.phar');
  await deny('/lib/source.phps');
  // PHP source of a script: running it is fine, sending its text is not.
  await deny('/config.php', (m) => `<?php\n// ${m}\necho "config ran\\n";\n`);

  await put(join(outside, 'secret.txt'), 'OUTSIDE-SECRET\n');
  await symlink(join(outside, 'secret.txt'), join(wwwRoot, 'escape.txt'));
  await symlink(outside, join(wwwRoot, 'escapedir'));
  await mkdir(dataRoot, { recursive: true });
  await symlink(join(outside, 'secret.txt'), join(dataRoot, 'escape-link.txt'));

  const xaccelBody = randomBytes(8 * 1024 * 1024 + 5);
  const file = 'filedir/3f/a1/3fa1c0ffee0123456789abcdef0123456789abcd';
  await put(join(dataRoot, file), xaccelBody);

  return {
    dir,
    wwwRoot,
    dataRoot,
    outside,
    statics,
    forbidden,
    xaccel: { file, body: xaccelBody },
    outsideSecret: 'OUTSIDE-SECRET',
    remove: () => rm(dir, { recursive: true, force: true }),
  };
}
