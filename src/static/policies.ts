// The two SafePathPolicy values quiclb uses, from moodle.* config.
import type { MoodleConfig } from '../config/types.ts';
import type { SafePathPolicy } from './safe-path.ts';

/** Static files under moodle.wwwRoot (FastCGI mode): Moodle's deny list, no dot-files, never PHP source. */
export function wwwRootPolicy(m: Pick<MoodleConfig, 'deniedPaths' | 'deniedPathStatus'>): SafePathPolicy {
  return { deniedPaths: m.deniedPaths, denyDotFiles: true, denyPhpSource: true, deniedStatus: m.deniedPathStatus };
}

/**
 * Files under moodle.dataRoot named by PHP's X-Accel-Redirect: PHP chose the file (after its own access checks),
 * so only containment applies; names in filedir are content hashes.
 */
export function dataRootPolicy(m: Pick<MoodleConfig, 'deniedPathStatus'>): SafePathPolicy {
  return { deniedPaths: [], denyDotFiles: false, denyPhpSource: false, deniedStatus: m.deniedPathStatus };
}
