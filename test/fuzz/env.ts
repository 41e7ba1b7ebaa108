// The system under fuzz: the real quiclb process (bin/quiclb.js start) in front of the fuzz backend, the
// well-behaved clients, and the health signals a run is judged by — sampled from /stats (shardRestarts,
// uncaughtErrors, backend health and failure counts), from quiclb's log (error-level lines: exceptions its
// own boundaries caught), from the backend (requests it could not parse) and from /proc (VmRSS).
import { readFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { request } from 'undici';
import { startQuiclb, type QuiclbProcess } from '../support/quiclb-process.ts';
import { startFuzzBackend, type BackendParseError, type FuzzBackend } from './backend.ts';
import { startNormalClients, type NormalClientStats, type NormalClients, type NormalProtocol } from './normal-clients.ts';
import { INSPECTOR_NOISE, heapAfterGc, inspectorUrl, socketReport, type HeapAfterGc } from './inspector.ts';

export interface FuzzEnvOptions {
  /** quiclb shards (default 1: every fuzz input then lands on the shard the normal clients use). */
  workers?: number;
  normal?: NormalProtocol[];
  /** Deep-merged over the fuzz config. */
  config?: Record<string, any>;
}

export interface HealthSample {
  at: number;
  shardRestarts: number;
  uncaughtErrors: number;
  /** Backends marked unhealthy, or with failures counted against them (a client's fault must never count). */
  harmedBackends: string[];
  rssKiB: number;
  /** Error-level log lines of quiclb since the start (msg + error message). */
  errorLogs: string[];
  backendParseErrors: BackendParseError[];
  normal: Partial<Record<NormalProtocol, NormalClientStats>>;
  /** /stats did not answer in time (itself a sign of trouble when it persists). */
  statsFailed?: string;
}

export class FuzzEnv {
  readonly lb: QuiclbProcess;
  readonly backend: FuzzBackend;
  readonly normal: NormalClients | null;
  readonly token: string;
  /** Warn-level log messages and how often (protocol refusals quiclb logs). */
  readonly warnings = new Map<string, number>();
  private readonly errorLogs: string[] = [];
  private scanned = 0;
  /** quiclb's inspector WebSocket URL (its stderr says it before "quiclb ready"). */
  private readonly inspector: string | undefined;

  private constructor(lb: QuiclbProcess, backend: FuzzBackend, normal: NormalClients | null, token: string) {
    this.lb = lb;
    this.backend = backend;
    this.normal = normal;
    this.token = token;
    this.inspector = inspectorUrl(lb.lines);
  }

  static async start(opts: FuzzEnvOptions = {}): Promise<FuzzEnv> {
    const backend = await startFuzzBackend();
    const token = randomBytes(16).toString('hex');
    let lb: QuiclbProcess;
    try {
      lb = await startQuiclb({
        workers: opts.workers ?? 1,
        // The inspector on a random loopback port, for forced GCs (inspector.ts): leaks versus lazy collection.
        env: { NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} --inspect=127.0.0.1:0`.trim() },
        config: {
          // An admin token, so no fuzz input can drain a backend through /dashboard or read /stats.
          admin: { token },
          // info: startQuiclb waits for the "quiclb ready" line; no access log (a line per fuzz request).
          logging: { level: 'info', format: 'json', accessLog: false },
          // Passive failures only (no active checks to race with), and never tripped by one bad answer.
          healthCheck: { enabled: false, passiveFailureThreshold: 5 },
          loadBalancer: { backendServers: [{ id: 'fuzz-1', host: '127.0.0.1', port: backend.port }] },
          ...opts.config,
        },
      });
    } catch (err) {
      await backend.close();
      throw err;
    }
    const normal = opts.normal && opts.normal.length > 0 ? startNormalClients(lb.httpPort, lb.httpsPort, opts.normal) : null;
    return new FuzzEnv(lb, backend, normal, token);
  }

  get httpPort(): number {
    return this.lb.httpPort;
  }

  get httpsPort(): number {
    return this.lb.httpsPort;
  }

  /** quiclb's resident set (all shards are threads of this one process), KiB; 0 once it has exited. */
  rssKiB(): number {
    try {
      const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${this.lb.child.pid}/status`, 'latin1'));
      return m ? Number(m[1]) : 0;
    } catch {
      return 0;
    }
  }

  get alive(): boolean {
    return this.lb.child.exitCode === null && this.lb.child.signalCode === null;
  }

  private scanLogs(): void {
    const lines = this.lb.lines;
    for (; this.scanned < lines.length; this.scanned++) {
      const line = lines[this.scanned];
      let e: { level?: number; msg?: string; err?: { message?: string; stack?: string } };
      try {
        e = JSON.parse(line);
      } catch {
        // Not pino: a crash trace or a native message on stderr is as bad as an error line.
        if (line.trim() !== '' && !INSPECTOR_NOISE.test(line)) this.errorLogs.push(`stderr: ${line.slice(0, 500)}`);
        continue;
      }
      if ((e.level ?? 0) >= 50) this.errorLogs.push(`${e.msg}: ${(e.err?.stack ?? e.err?.message ?? '').slice(0, 1500)}`);
      else if ((e.level ?? 0) >= 40) this.warnings.set(String(e.msg), (this.warnings.get(String(e.msg)) ?? 0) + 1);
    }
    // Only the new lines are needed from now on: keep the test process's memory flat on long runs.
    if (lines.length > 10_000) {
      lines.splice(0, lines.length);
      this.scanned = 0;
    }
  }

  /** Forces full GCs in every isolate of quiclb and returns their live heap; undefined without an inspector. */
  async heapAfterGc(): Promise<HeapAfterGc | undefined> {
    if (this.inspector === undefined || !this.alive) return undefined;
    try {
      return await heapAfterGc(this.inspector);
    } catch {
      return undefined;
    }
  }

  /** The sockets every shard still holds, with their state (for a connection-leak report); '' without an inspector. */
  async socketReport(): Promise<string> {
    if (this.inspector === undefined || !this.alive) return '';
    try {
      return await socketReport(this.inspector);
    } catch (err) {
      return `socket report failed: ${(err as Error).message}`;
    }
  }

  async stats(): Promise<any> {
    const res = await request(`http://127.0.0.1:${this.httpPort}/stats`, {
      headers: { authorization: `Bearer ${this.token}` },
      headersTimeout: 10_000,
      bodyTimeout: 10_000,
    });
    const text = await res.body.text();
    if (res.statusCode !== 200) throw new Error(`/stats answered ${res.statusCode}`);
    return JSON.parse(text);
  }

  /** Open connections quiclb counts, over all shards (/stats shards[].connections and .quicConnections). */
  async openConnections(): Promise<{ tcp: number; quic: number }> {
    try {
      const s = await this.stats();
      let tcp = 0;
      let quic = 0;
      for (const sh of s.shards ?? []) {
        tcp += sh.connections ?? 0;
        quic += sh.quicConnections ?? 0;
      }
      return { tcp, quic };
    } catch {
      return { tcp: 0, quic: 0 };
    }
  }

  async sample(): Promise<HealthSample> {
    this.scanLogs();
    const out: HealthSample = {
      at: Date.now(),
      shardRestarts: 0,
      uncaughtErrors: 0,
      harmedBackends: [],
      rssKiB: this.rssKiB(),
      errorLogs: [...this.errorLogs],
      backendParseErrors: [...this.backend.parseErrors],
      normal: this.normal?.stats() ?? {},
    };
    if (!this.alive) {
      out.statsFailed = `quiclb exited (code ${this.lb.child.exitCode}, signal ${this.lb.child.signalCode})`;
      return out;
    }
    try {
      const s = await this.stats();
      out.shardRestarts = s.shardRestarts;
      out.uncaughtErrors = s.uncaughtErrors;
      for (const b of s.backends) if (b.healthy !== true || b.errors !== 0) out.harmedBackends.push(`${b.id} healthy=${b.healthy} errors=${b.errors}`);
    } catch (err) {
      out.statsFailed = (err as Error).message;
    }
    return out;
  }

  async stop(): Promise<Partial<Record<NormalProtocol, NormalClientStats>>> {
    const normal = (await this.normal?.stop()) ?? {};
    await this.lb.stop();
    await this.backend.close();
    return normal;
  }
}
