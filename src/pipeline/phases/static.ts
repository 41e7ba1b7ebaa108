// FastCGI mode: with php-fpm behind it and no web server in between, quiclb is the web server of moodle.wwwRoot.
// The phase runs when wwwRoot is a directory and at least one backend speaks FastCGI, for every request whose
// route group (loadBalancer.routes) holds a FastCGI backend; other requests go on untouched. It resolves the
// path against the files under wwwRoot as nginx's Moodle configuration does (src/fastcgi/script.ts):
//   - a PHP script that exists: the request goes on to the proxy phase with ex.script set (a directory runs its
//     index.php, /pluginfile.php/12/... gives PATH_INFO);
//   - any other existing file: served here, on every protocol (ETag/Last-Modified and 304, single Range and 206,
//     Content-Type by extension), GET and HEAD only;
//   - a directory named without its trailing slash: 301 to it with the slash;
//   - traversal in any spelling (.., %2e%2e, %2f, %5c, NUL), dot-files other than /.well-known/, moodle.deniedPaths,
//     PHP source, a symlink leaving wwwRoot: moodle.deniedPathStatus;
//   - nothing there, a .php that does not exist included: 404 from quiclb, never passed to php-fpm (with
//     cgi.fix_pathinfo=1 php-fpm would walk up from /upload/x.jpg/y.php and run x.jpg as PHP).
import type { Config } from '../../config/types.ts';
import { wwwRootDirectory } from '../../config/www-root.ts';
import type { Balancer } from '../../balancer/balancer.ts';
import { resolveScript, type ScriptPolicy } from '../../fastcgi/script.ts';
import { createSafeRoot, openSafeFile, type SafeRoot } from '../../static/safe-path.ts';
import { serveFile } from '../../static/serve-file.ts';
import { wwwRootPolicy } from '../../static/policies.ts';
import type { Exchange } from '../exchange.ts';
import type { Phase } from '../phase.ts';

export function staticPhase(config: Config, balancer: Balancer): Phase | undefined {
  const dir = wwwRootDirectory(config.moodle);
  if (dir === undefined || !config.loadBalancer.backendServers.some((b) => b.protocol === 'fastcgi')) return undefined;
  const filePolicy = wwwRootPolicy(config.moodle);
  const scriptPolicy: ScriptPolicy = { deniedPaths: config.moodle.deniedPaths };
  const deniedStatus = config.moodle.deniedPathStatus;
  // realpath once, on first use: every opened file and script must lie under it.
  let root: Promise<SafeRoot> | undefined;

  const resolve = async (ex: Exchange): Promise<boolean> => {
    const req = ex.req;
    const r = await (root ??= createSafeRoot(dir));
    const found = await resolveScript(r.dir, r.real, req.path, scriptPolicy);
    switch (found.kind) {
      case 'script':
        ex.script = found;
        return false;
      case 'static': {
        const opened = await openSafeFile(r, req.path, filePolicy);
        req.body?.resume();
        if (!opened.ok) return answer(ex, opened.status);
        ex.answeredBy = 'static';
        await serveFile(req, ex.response(), opened.file);
        return true;
      }
      case 'redirect':
        req.body?.resume();
        ex.answer(301, `Moved to ${found.location}\n`, [['location', found.location]], 'static');
        return true;
      case 'not-found':
        req.body?.resume();
        return answer(ex, 404);
      case 'refused':
        req.body?.resume();
        return answer(ex, deniedStatus);
    }
  };

  return {
    name: 'static',
    request(ex: Exchange): boolean | Promise<boolean> {
      const req = ex.req;
      if (!balancer.routeBackends(req.authority, req.path).some((b) => b.protocol === 'fastcgi')) return false;
      return resolve(ex);
    },
  };
}

function answer(ex: Exchange, status: number): true {
  ex.answer(status, status === 403 ? '403 Forbidden\n' : '404 Not Found\n', undefined, 'static');
  return true;
}
