// `quiclb cache purge [PREFIX] [--config FILE]`: removes stored responses from the response cache's store
// file (cache.path, by default tls.stateDir/cache.sqlite) from this process, while quiclb runs or not: every
// shard reads the same SQLite file, and SQLite's locking orders this write with theirs. quiclb's /stats
// shows the new size after its next write to the store.
import { existsSync } from 'node:fs';
import type { Config } from '../config/types.ts';
import { purgeCacheFile } from '../cache/cache.ts';
import { cacheSettings } from '../cache/settings.ts';
import { purgePrefixProblem } from '../admin/cache-purge.ts';

/** Returns the exit status: 0 purged, 1 no store at cache.path, 2 a prefix that can match nothing. */
export function runCachePurge(config: Config, prefix: string | undefined): number {
  const settings = cacheSettings(config);
  const problem = purgePrefixProblem(prefix ?? '');
  if (problem !== undefined) {
    process.stderr.write(`quiclb: ${problem}\n`);
    return 2;
  }
  if (!existsSync(settings.path)) {
    process.stderr.write(
      `quiclb: no cache store at ${settings.path}, so nothing to purge; give the --config quiclb runs with (cache.path, tls.stateDir)\n`,
    );
    return 1;
  }
  if (!settings.enabled) process.stderr.write('quiclb: note: the response cache is off in this config (cache.enabled, moodle.enableCaching)\n');
  const purged = purgeCacheFile(settings, prefix === '' ? undefined : prefix);
  process.stdout.write(`purged ${purged} ${purged === 1 ? 'entry' : 'entries'}${prefix ? ` under ${prefix}` : ''} from ${settings.path}\n`);
  return 0;
}
