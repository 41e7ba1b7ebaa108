// `quiclb reload [--pid-file FILE] [--config FILE]`: asks the running quiclb to re-read its configuration by
// sending it SIGHUP (as `systemctl reload quiclb` does with ExecReload). With --config the file is validated
// here first, so a typo is reported on this terminal (and the running quiclb is not bothered); the pid file
// is --pid-file, else that config's server.pidFile. The outcome is in quiclb's log and in /stats `config`.
import type { Config } from '../config/types.ts';
import { readPidFile } from './pid-file.ts';

export interface ReloadCommandOptions {
  pidFile?: string;
  /** The validated config, when --config was given. */
  config?: Config;
  configFile?: string;
  /** For tests: where the signal goes. */
  kill?: (pid: number, signal: NodeJS.Signals) => void;
}

/** Returns the exit status; writes what it did (or why not) to stderr. */
export function runReload(opts: ReloadCommandOptions): number {
  const file = opts.pidFile ?? opts.config?.server.pidFile;
  if (file === undefined) {
    process.stderr.write(
      opts.config === undefined
        ? 'quiclb: reload needs --pid-file FILE, or --config FILE whose server.pidFile names it\n'
        : `quiclb: ${opts.configFile} sets no server.pidFile; pass --pid-file FILE\n`,
    );
    return 2;
  }
  let pid: number;
  try {
    pid = readPidFile(file);
  } catch (err) {
    process.stderr.write(`quiclb: ${(err as Error).message}\n`);
    return 1;
  }
  try {
    (opts.kill ?? process.kill)(pid, 'SIGHUP');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    process.stderr.write(
      code === 'ESRCH'
        ? `quiclb: no process ${pid} (from ${file}): quiclb is not running, or the pid file is stale\n`
        : `quiclb: cannot signal process ${pid} (${code ?? (err as Error).message}): run as the user quiclb runs as\n`,
    );
    return 1;
  }
  process.stderr.write(`quiclb: sent SIGHUP to quiclb (pid ${pid}); the result is in its log and in /stats "config"\n`);
  return 0;
}
