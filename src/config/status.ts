// Where the running configuration came from, as /stats reports it (`config`): the primary keeps it
// (src/primary/reload.ts) and tells every shard, restarted ones too.

export interface ConfigStatus {
  /** 1 for the configuration quiclb started with, +1 for each applied reload. */
  generation: number;
  /** When this generation was loaded (ms since the epoch). */
  loadedAt: number;
  /** Why the last reload was refused (`field: what was expected, got what`), null when it was applied. */
  lastReloadError: string | null;
  /** Reloads refused since start (invalid file, unusable certificate, ...). */
  failedReloads: number;
  /** Settings the file changed that keep their running values until a restart (src/config/reloadable.ts). */
  needsRestart: string[];
}

export function initialConfigStatus(now = Date.now()): ConfigStatus {
  return { generation: 1, loadedAt: now, lastReloadError: null, failedReloads: 0, needsRestart: [] };
}
