// X-Accel-Redirect: Moodle with $CFG->xsendfile = 'X-Accel-Redirect' and $CFG->xsendfilealiases mapping
// moodle.xAccelRedirectPrefix to its dataroot answers a file download (pluginfile.php, after its own access
// checks) with `X-Accel-Redirect: /dataroot/filedir/ab/cd/abcd...` and no body. Whatever the backend (FastCGI or
// HTTP), quiclb takes the response over: the backend's body is dropped and the file is streamed from
// moodle.dataRoot with PHP's other header fields (Content-Type, Content-Disposition, Cache-Control, Set-Cookie),
// conditional requests and Range as for static files; X-Accel-* fields never reach the client. A path outside
// the prefix or outside dataRoot (.., symlinks) is refused (moodle.deniedPathStatus; a missing file: 404).
//
// Active when moodle.dataRoot is set, or when a backend speaks FastCGI (there is no web server that could
// honour the header then: without dataRoot every such response is a 404 and a warning).
import type { Config } from '../../config/types.ts';
import type { Logger } from '../../shared/logger.ts';
import { createSafeRoot, openSafeFile, type SafeRoot } from '../../static/safe-path.ts';
import { serveFile } from '../../static/serve-file.ts';
import { dataRootPolicy } from '../../static/policies.ts';
import { xAccelFilePath, xAccelRedirectOf } from '../../static/x-accel.ts';
import type { Exchange } from '../exchange.ts';
import type { Phase, ResponseHead } from '../phase.ts';

export function xAccelPhase(config: Config, logger: Logger): Phase | undefined {
  const { dataRoot, xAccelRedirectPrefix: prefix } = config.moodle;
  if (dataRoot === undefined && !config.loadBalancer.backendServers.some((b) => b.protocol === 'fastcgi')) return undefined;
  const policy = dataRootPolicy(config.moodle);
  let root: Promise<SafeRoot> | undefined;

  const refuse = (ex: Exchange, status: number, value: string, why: string): void => {
    logger.warn({ backend: ex.backend?.id, path: ex.req.path, xAccelRedirect: value, status }, `X-Accel-Redirect refused: ${why}`);
    ex.answer(status, status === 403 ? '403 Forbidden\n' : '404 Not Found\n', undefined, 'x-accel');
  };

  const serve = async (ex: Exchange, head: ResponseHead, value: string): Promise<void> => {
    const file = xAccelFilePath(value, prefix);
    if (dataRoot === undefined) return refuse(ex, 404, value, 'moodle.dataRoot is not set');
    if (file === undefined) return refuse(ex, 404, value, `it does not start with moodle.xAccelRedirectPrefix (${prefix})`);
    const opened = await openSafeFile(await (root ??= createSafeRoot(dataRoot)), file, policy);
    if (!opened.ok) {
      if (opened.reason === 'not-found') ex.answer(404, '404 Not Found\n', undefined, 'x-accel');
      else refuse(ex, opened.status, value, `${opened.reason}${opened.rule === undefined ? '' : ` (${opened.rule})`} under moodle.dataRoot`);
      return;
    }
    ex.answeredBy = 'x-accel';
    // PHP chose the file after handling the method (a POST may download too), as nginx's internal redirect does.
    await serveFile(ex.req, ex.response(), opened.file, { headers: head.headers, getHeadOnly: false });
  };

  return {
    name: 'x-accel',
    backendResponse(ex: Exchange, head: ResponseHead): Promise<void> | undefined {
      const value = xAccelRedirectOf(head.headers);
      return value === undefined ? undefined : serve(ex, head, value);
    },
  };
}
