// server.pidFile: `quiclb start` writes its process id there once it serves, and removes the file when it
// exits (only if the file still names this process: a second quiclb may have taken it over). `quiclb
// reload` reads it to find the process to signal.
import { readFileSync, rmSync, writeFileSync } from 'node:fs';

export const PID_FILE_ERROR = 'QUICLB_PID_FILE';

export class PidFileError extends Error {
  readonly code = PID_FILE_ERROR;
  constructor(message: string) {
    super(message);
    this.name = 'PidFileError';
  }
}

export function writePidFile(file: string, pid = process.pid): void {
  try {
    writeFileSync(file, `${pid}\n`, { mode: 0o644 });
  } catch (err) {
    throw new PidFileError(`server.pidFile: cannot write ${file} (${(err as NodeJS.ErrnoException).code ?? 'EIO'}); check that its directory exists and is writable by quiclb`);
  }
}

/** Removes the file if it still holds `pid`; never throws (it runs while quiclb exits). */
export function removePidFile(file: string, pid = process.pid): void {
  try {
    if (readFileSync(file, 'utf8').trim() === String(pid)) rmSync(file, { force: true });
  } catch {
    // already gone, or unreadable: nothing of ours to remove
  }
}

/** The process id in `file`; throws a PidFileError saying what is wrong. */
export function readPidFile(file: string): number {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'EIO';
    throw new PidFileError(
      code === 'ENOENT' ? `${file} does not exist: is quiclb running with server.pidFile set to it?` : `cannot read ${file} (${code})`,
    );
  }
  const pid = Number(text.trim());
  if (!Number.isInteger(pid) || pid <= 1) throw new PidFileError(`${file} does not hold a process id (got ${JSON.stringify(text.trim().slice(0, 40))})`);
  return pid;
}
