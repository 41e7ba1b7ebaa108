// The progress line on stderr: `[3/24] h2-64k-keepalive-1shard quiclb 4.0s/5.5s 12345 req`. Rewritten in place
// on a terminal; on a pipe or file, one line per second at most so logs stay short.
export class Progress {
  private readonly tty = process.stderr.isTTY === true;
  private lastPrint = 0;
  private run = 0;
  private readonly total: number;

  constructor(total: number) {
    this.total = total;
  }

  /** Starts the next run; returns the callback the load runner calls with (elapsed s, completed requests). */
  next(scenario: string, target: string, plannedS: number): (elapsedS: number, completed: number) => void {
    this.run++;
    const head = `[${this.run}/${this.total}] ${scenario} ${target}`;
    this.lastPrint = 0;
    let finalShown = false;
    return (elapsedS, completed) => {
      const line = `${head} ${elapsedS.toFixed(1)}s/${plannedS.toFixed(1)}s ${completed} req`;
      if (this.tty) {
        process.stderr.write(`\r\x1b[K${line}`);
        return;
      }
      const now = Date.now();
      const final = elapsedS >= plannedS;
      if ((now - this.lastPrint >= 1000 && !final) || (final && !finalShown)) {
        finalShown ||= final;
        this.lastPrint = now;
        process.stderr.write(`${line}\n`);
      }
    };
  }

  note(msg: string): void {
    process.stderr.write(this.tty ? `\r\x1b[K${msg}\n` : `${msg}\n`);
  }

  done(): void {
    if (this.tty) process.stderr.write('\r\x1b[K');
  }
}
