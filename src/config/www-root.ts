// Telling the two forms of moodle.wwwRoot apart (see WwwRoot in types.ts).
import type { MoodleConfig, WwwRoot } from './types.ts';

export function isDirectoryWwwRoot(v: WwwRoot): v is `/${string}` {
  return v.startsWith('/');
}

/** The document root when moodle.wwwRoot is a directory. */
export function wwwRootDirectory(m: Pick<MoodleConfig, 'wwwRoot'>): string | undefined {
  return m.wwwRoot !== undefined && isDirectoryWwwRoot(m.wwwRoot) ? m.wwwRoot : undefined;
}

/** Moodle's public URL when moodle.wwwRoot is one. */
export function wwwRootUrl(m: Pick<MoodleConfig, 'wwwRoot'>): string | undefined {
  return m.wwwRoot !== undefined && !isDirectoryWwwRoot(m.wwwRoot) ? m.wwwRoot : undefined;
}
