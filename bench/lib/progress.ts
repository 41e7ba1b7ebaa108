// The progress line on stderr: `[3/24] h2-64k-keepalive-1shard quiclb h2load 4.0s/5.5s 12345 req`: run, scenario,
// target, load generator, time, and requests completed (wrk reports them only at its end; h2load neither: their
// lines show the count once the tool has finished). Rewritten in place on a terminal; on a pipe or file, one
// line per second at most so logs stay short.
export type ProgressFn = (elapsedS: number, completed?: number, done?: boolean) => void;

export class Progress {
  private readonly tty = process.stderr.isTTY === true;
  private lastPrint = 0;
  private run = 0;
  private total: number;

  constructor(total: number) {
    this.total = total;
  }

  /**
   * Starts the next run; returns the callback the load runner calls with (elapsed s, completed requests or
   * undefined while an external tool runs) and, once, with `final` set when the run is over.
   */
  next(scenario: string, target: string, generator: string, plannedS: number): ProgressFn {
    this.run++;
    const head = `[${this.run}/${this.total}] ${scenario} ${target} ${generator}`;
    this.lastPrint = 0;
    let finalShown = false;
    return (elapsedS, completed, done = false) => {
      const line = `${head} ${elapsedS.toFixed(1)}s/${plannedS.toFixed(1)}s${completed === undefined ? '' : ` ${completed} req`}`;
      if (this.tty) {
        process.stderr.write(`\r\x1b[K${line}`);
        return;
      }
      const now = Date.now();
      const final = done || (elapsedS >= plannedS && completed !== undefined);
      if ((now - this.lastPrint >= 1000 && !final) || (final && !finalShown)) {
        finalShown ||= final;
        this.lastPrint = now;
        process.stderr.write(`${line}\n`);
      }
    };
  }

  /** Adds runs to the total (half-peak runs are known only once the peak is measured). */
  addRuns(n: number): void {
    this.total += n;
  }

  note(msg: string): void {
    process.stderr.write(this.tty ? `\r\x1b[K${msg}\n` : `${msg}\n`);
  }

  done(): void {
    if (this.tty) process.stderr.write('\r\x1b[K');
  }
}
