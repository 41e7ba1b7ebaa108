// Mapping a URL path to an open file under a root directory, refusing everything that could reach outside it
// or expose what must stay private. Used for static files under moodle.wwwRoot (FastCGI mode) and for
// X-Accel-Redirect files under moodle.dataRoot.
//
// The containment check is done on the file actually opened (its /proc/self/fd link), not on a path checked
// beforehand, so a symlink swapped in between cannot redirect the open (no check-then-use race).

import { constants } from 'node:fs';
import { open, readlink, realpath, type FileHandle } from 'node:fs/promises';
import type { Stats } from 'node:fs';
import { sep } from 'node:path';
import { decodeUrlPath, deniedBy, hasDotFile, type UrlPathRefusal } from '../shared/url-path.ts';

export interface SafeRoot {
  /** The directory as configured. */
  dir: string;
  /** Its realpath, the bound for every opened file. */
  real: string;
}

export async function createSafeRoot(dir: string): Promise<SafeRoot> {
  return { dir, real: await realpath(dir) };
}

export interface SafePathPolicy {
  /** Substrings (case-insensitive) of the decoded path that are never served (moodle.deniedPaths). */
  deniedPaths: readonly string[];
  /** Refuse dot-files and dot-folders (".git/", ".env"); "/.well-known/" stays served. */
  denyDotFiles: boolean;
  /** Refuse PHP source (.php, .phtml, .phar, .inc, ...): never sent as text. */
  denyPhpSource: boolean;
  /** Status for refused paths (moodle.deniedPathStatus). Missing files are always 404. */
  deniedStatus: 403 | 404;
}

export type SafePathReason =
  | UrlPathRefusal
  | 'dot-file'
  | 'denied'
  | 'php-source'
  | 'outside-root'
  | 'not-found'
  | 'not-a-file';

export interface OpenFile {
  /** Real path of the opened file. */
  path: string;
  handle: FileHandle;
  stats: Stats;
}

export type SafeFileResult = { ok: true; file: OpenFile } | { ok: false; status: 403 | 404; reason: SafePathReason; rule?: string };

const PHP_SOURCE_RE = /\.(?:php\d?|phtml|phar|phps|inc)$/i;

function refuse(policy: SafePathPolicy, reason: SafePathReason, rule?: string): SafeFileResult {
  return rule === undefined ? { ok: false, status: policy.deniedStatus, reason } : { ok: false, status: policy.deniedStatus, reason, rule };
}

const notFound = (reason: 'not-found' | 'not-a-file'): SafeFileResult => ({ ok: false, status: 404, reason });

function isInside(realRoot: string, real: string): boolean {
  return real.startsWith(realRoot.endsWith(sep) ? realRoot : realRoot + sep);
}

/**
 * Opens the regular file `urlPath` (an origin-form target; the query is ignored) names under `root`. On
 * success the caller owns `file.handle` (serveFile closes it).
 */
export async function openSafeFile(root: SafeRoot, urlPath: string, policy: SafePathPolicy): Promise<SafeFileResult> {
  const decoded = decodeUrlPath(urlPath);
  if (!decoded.ok) return refuse(policy, decoded.reason);
  const { segments } = decoded;
  if (segments.length === 0 || decoded.trailingSlash) return notFound('not-a-file');
  const path = `/${segments.join('/')}`;
  if (policy.denyDotFiles && hasDotFile(segments)) return refuse(policy, 'dot-file');
  const rule = deniedBy(path, policy.deniedPaths);
  if (rule !== undefined) return refuse(policy, 'denied', rule);
  if (policy.denyPhpSource && PHP_SOURCE_RE.test(segments[segments.length - 1])) return refuse(policy, 'php-source');

  let handle: FileHandle;
  try {
    // O_NONBLOCK: opening a FIFO planted in the tree must not hang the shard.
    handle = await open(root.real + path, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch {
    return notFound('not-found'); // ENOENT, ENOTDIR, EACCES, ELOOP: nothing servable there
  }
  try {
    const real = await readlink(`/proc/self/fd/${handle.fd}`);
    if (!isInside(root.real, real)) {
      await handle.close();
      return refuse(policy, 'outside-root');
    }
    const stats = await handle.stat();
    if (!stats.isFile()) {
      await handle.close();
      return notFound('not-a-file');
    }
    return { ok: true, file: { path: real, handle, stats } };
  } catch {
    await handle.close().catch(() => {});
    return notFound('not-found');
  }
}
