// Which PHP script a URL runs, decided against the real file system inside the document root, the way
// nginx's `fastcgi_split_path_info ^(.+\.php)(/.+)$` + `try_files $fastcgi_script_name =404` does for Moodle:
//   /course/view.php                                   -> course/view.php
//   /pluginfile.php/12/mod_resource/content/0/file.pdf -> pluginfile.php, PATH_INFO /12/mod_resource/content/0/file.pdf
//   /course/                                           -> course/index.php
//   /course                                            -> redirect to /course/ (relative links need the slash)
//   /theme/boost/pix/favicon.ico                       -> a static file (src/static serves it)
// A .php path that is not an existing file is "not found" and never reaches php-fpm: with cgi.fix_pathinfo=1,
// php-fpm would walk up from /upload/evil.jpg/x.php and run evil.jpg as PHP.

import { realpath, stat } from 'node:fs/promises';
import { sep } from 'node:path';
import { decodeUrlPath, deniedBy, hasDotFile, type UrlPathRefusal } from '../shared/url-path.ts';

export interface ScriptTarget {
  /** URL path of the script: "/pluginfile.php". */
  scriptName: string;
  /** File php-fpm runs: documentRoot + scriptName (symlinks kept, as nginx's $document_root$fastcgi_script_name). */
  scriptFilename: string;
  /** Decoded rest of the path after the script ("" when none). */
  pathInfo: string;
}

export type ScriptResolution =
  | ({ kind: 'script' } & ScriptTarget)
  /** An existing non-PHP file: serve it statically (src/static). `path` is "/" + decoded segments. */
  | { kind: 'static'; path: string }
  /** A directory requested without its trailing slash: answer 301 to `location` (query kept). */
  | { kind: 'redirect'; location: string }
  | { kind: 'not-found' }
  /** Refused: traversal forms, dot-files, the deny list, or a symlink leaving the root. */
  | { kind: 'refused'; reason: UrlPathRefusal | 'dot-file' | 'denied' | 'outside-root'; rule?: string };

export interface ScriptPolicy {
  /** Substrings (case-insensitive) never served or run, e.g. Moodle's "/vendor/" (config moodle.deniedPaths). */
  deniedPaths: readonly string[];
  /** Script run for paths that match no file, e.g. "/r.php" for Moodle 4.5+ routing; absent = not found. */
  fallbackScript?: string;
  /** Index file for directory requests (default "index.php"). */
  index?: string;
}

const PHP_EXT = '.php';

async function kindOf(file: string): Promise<'file' | 'dir' | 'none'> {
  try {
    const s = await stat(file);
    return s.isFile() ? 'file' : s.isDirectory() ? 'dir' : 'none';
  } catch {
    return 'none'; // ENOENT, ENOTDIR (a file used as a directory), EACCES: all "no such script"
  }
}

async function inside(realRoot: string, file: string): Promise<boolean> {
  try {
    const real = await realpath(file);
    return real === realRoot || real.startsWith(realRoot.endsWith(sep) ? realRoot : realRoot + sep);
  } catch {
    return false;
  }
}

/**
 * `documentRoot` is used as given in SCRIPT_FILENAME; `realRoot` is its realpath (computed once by the caller)
 * and bounds where symlinks may lead.
 */
export async function resolveScript(documentRoot: string, realRoot: string, target: string, policy: ScriptPolicy): Promise<ScriptResolution> {
  const decoded = decodeUrlPath(target);
  if (!decoded.ok) return { kind: 'refused', reason: decoded.reason };
  const { segments } = decoded;
  const root = documentRoot.endsWith('/') ? documentRoot.slice(0, -1) : documentRoot;

  const script = async (scriptSegments: string[], pathInfo: string): Promise<ScriptResolution> => {
    const scriptName = `/${scriptSegments.join('/')}`;
    if (hasDotFile(scriptSegments)) return { kind: 'refused', reason: 'dot-file' };
    const rule = deniedBy(scriptName, policy.deniedPaths);
    if (rule !== undefined) return { kind: 'refused', reason: 'denied', rule };
    const scriptFilename = root + scriptName;
    if (!(await inside(realRoot, scriptFilename))) return { kind: 'refused', reason: 'outside-root' };
    return { kind: 'script', scriptName, scriptFilename, pathInfo };
  };

  // The first segment ending in .php that is a file is the script; the rest is PATH_INFO.
  for (let i = 0; i < segments.length; i++) {
    if (!segments[i].toLowerCase().endsWith(PHP_EXT)) continue;
    const prefix = segments.slice(0, i + 1);
    const kind = await kindOf(`${root}/${prefix.join('/')}`);
    if (kind === 'file') {
      const rest = segments.slice(i + 1);
      const pathInfo = rest.length === 0 ? '' : `/${rest.join('/')}${decoded.trailingSlash ? '/' : ''}`;
      return script(prefix, pathInfo);
    }
    if (kind === 'none') return fallback(policy, script);
  }

  const whole = `${root}/${segments.join('/')}`;
  const kind = segments.length === 0 ? 'dir' : await kindOf(whole);
  if (kind === 'dir') {
    if (!decoded.trailingSlash) {
      const q = target.indexOf('?');
      return { kind: 'redirect', location: q < 0 ? `${target}/` : `${target.slice(0, q)}/${target.slice(q)}` };
    }
    const index = policy.index ?? 'index.php';
    if ((await kindOf(`${whole}/${index}`)) === 'file') return script([...segments, index], '');
    return { kind: 'not-found' };
  }
  if (kind === 'file') {
    const path = `/${segments.join('/')}`;
    if (hasDotFile(segments)) return { kind: 'refused', reason: 'dot-file' };
    const rule = deniedBy(path, policy.deniedPaths);
    if (rule !== undefined) return { kind: 'refused', reason: 'denied', rule };
    return { kind: 'static', path };
  }
  return fallback(policy, script);
}

function fallback(policy: ScriptPolicy, script: (segments: string[], pathInfo: string) => Promise<ScriptResolution>): Promise<ScriptResolution> | ScriptResolution {
  if (policy.fallbackScript === undefined) return { kind: 'not-found' };
  const segs = policy.fallbackScript.split('/').filter((s) => s !== '');
  return script(segs, '');
}
