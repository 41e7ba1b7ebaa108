// X-Accel-Redirect values mapped onto a real dataroot made by the test, then served.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { xAccelFilePath, xAccelRedirectOf } from '../../src/static/x-accel.ts';
import { dataRootPolicy, wwwRootPolicy } from '../../src/static/policies.ts';
import { createSafeRoot, openSafeFile, type SafeRoot } from '../../src/static/safe-path.ts';
import { serveFile } from '../../src/static/serve-file.ts';
import { validateConfig } from '../../src/config/load.ts';
import type { FrontRequest } from '../../src/shared/http-types.ts';
import { recordingResponse } from '../support/recording-response.ts';

let base = '';
let data: SafeRoot;
before(async () => {
  base = mkdtempSync(join(tmpdir(), 'quiclb-xaccel-'));
  mkdirSync(join(base, 'data/filedir/ab/cd'), { recursive: true });
  writeFileSync(join(base, 'data/filedir/ab/cd/abcdef0123'), 'PDF bytes');
  writeFileSync(join(base, 'data/filedir/100%.txt'), 'percent');
  writeFileSync(join(base, 'secret.txt'), 'SECRET');
  data = await createSafeRoot(join(base, 'data'));
});
after(() => rmSync(base, { recursive: true, force: true }));

test('values under the prefix map to dataroot paths; literal "%" stays literal; other values are not ours', () => {
  assert.equal(xAccelFilePath('/dataroot/filedir/ab/cd/abcdef0123', '/dataroot/'), '/filedir/ab/cd/abcdef0123');
  assert.equal(xAccelFilePath('/dataroot/filedir/100%.txt', '/dataroot/'), '/filedir/100%25.txt');
  assert.equal(xAccelFilePath('/other/x', '/dataroot/'), undefined);
  assert.equal(xAccelRedirectOf([['content-type', 'application/pdf'], ['x-accel-redirect', '/dataroot/x']]), '/dataroot/x');
  assert.equal(xAccelRedirectOf([['content-type', 'text/html']]), undefined);
});

test('served from dataRoot with PHP\'s headers, for a POST too; traversal out of the dataroot is refused', async () => {
  const m = validateConfig({}).moodle;
  const php = [['content-type', 'application/pdf'], ['content-disposition', 'inline; filename="a.pdf"'], ['x-accel-redirect', '/dataroot/filedir/ab/cd/abcdef0123']] as Array<[string, string]>;
  const rel = xAccelFilePath(xAccelRedirectOf(php) as string, m.xAccelRedirectPrefix) as string;
  const r = await openSafeFile(data, rel, dataRootPolicy(m));
  assert.ok(r.ok);
  const req: FrontRequest = { protocol: 'HTTP/1.1', method: 'POST', scheme: 'https', authority: 'm', path: '/pluginfile.php/1/x/a.pdf', headers: [], body: null, remoteAddress: '127.0.0.1', remotePort: 1, localPort: 443, connectionKey: 'c', shard: 0 };
  const { res, rec } = recordingResponse();
  await serveFile(req, res, r.file, { headers: php, getHeadOnly: false });
  assert.equal(rec.status, 200);
  assert.equal(rec.body().toString(), 'PDF bytes');
  assert.equal(rec.header('content-disposition'), 'inline; filename="a.pdf"');
  assert.equal(rec.header('x-accel-redirect'), undefined);
  const pct = await openSafeFile(data, xAccelFilePath('/dataroot/filedir/100%.txt', '/dataroot/') as string, dataRootPolicy(m));
  assert.ok(pct.ok);
  await pct.file.handle.close();
  for (const v of ['/dataroot/../secret.txt', '/dataroot/filedir/../../secret.txt', '/dataroot/filedir/x\0', '/dataroot/..\\secret.txt']) {
    const p = xAccelFilePath(v, '/dataroot/') as string;
    const refused = await openSafeFile(data, p, dataRootPolicy(m));
    assert.equal(refused.ok, false, v);
  }
  // The wwwRoot policy carries the configured list and status.
  assert.deepEqual(wwwRootPolicy({ deniedPaths: ['/x/'], deniedPathStatus: 403 }), { deniedPaths: ['/x/'], denyDotFiles: true, denyPhpSource: true, deniedStatus: 403 });
});
