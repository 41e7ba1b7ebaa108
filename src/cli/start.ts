// `quiclb start`: optional demo backends, the primary, the pid file, and signal handling: SIGTERM/SIGINT for
// a graceful drain, SIGHUP for a configuration reload (src/primary/reload.ts).
import type { Config } from '../config/types.ts';
import type { Logger } from '../shared/logger.ts';
import { startPrimary, type RunningPrimary } from '../primary/primary.ts';
import { startDemoBackend } from '../demo/backends.ts';
import type { DemoBackend } from '../demo/backends.ts';
import { removePidFile, writePidFile } from './pid-file.ts';

export interface StartOptions {
  config: Config;
  workers?: number;
  demo: boolean;
  logger: Logger;
  hasConfigFile: boolean;
  /** Reads and validates the configuration again for a reload (throws a ConfigError). */
  reloadConfig?: () => Config;
}

export async function runStart(opts: StartOptions): Promise<void> {
  const { config, logger } = opts;
  // Installed first: Node's default for SIGHUP ends the process. One that arrives while quiclb is still
  // starting is applied as soon as it serves.
  let primary: RunningPrimary | undefined;
  let reloadPending = false;
  process.on('SIGHUP', () => {
    logger.info({ signal: 'SIGHUP' }, 'signal received: reloading the configuration');
    if (primary === undefined) reloadPending = true;
    else void primary.reload();
  });

  const demos: DemoBackend[] = [];
  if (config.loadBalancer.backendServers.length === 0) {
    if (!opts.demo) {
      process.stderr.write(
        'quiclb: invalid config: loadBalancer.backendServers: expected at least one backend, got [] (add backends, set BACKEND_SERVERS, or run `quiclb start --demo`)\n',
      );
      process.exit(2);
    }
    for (const id of ['demo-1', 'demo-2']) demos.push(await startDemoBackend(id, 0));
    fillDemoBackends(config, demos);
    logger.warn({ backends: demos.map((d) => `${d.id}=127.0.0.1:${d.port}`) }, 'DEMO MODE: serving two built-in demo backends; configure loadBalancer.backendServers for real use');
  }
  const reload = opts.reloadConfig;
  const loadConfig =
    reload === undefined
      ? undefined
      : () => {
          const next = reload();
          // Demo mode without a backend list keeps serving its demo backends across reloads.
          if (demos.length > 0 && next.loadBalancer.backendServers.length === 0) fillDemoBackends(next, demos);
          return next;
        };
  primary = await startPrimary({ config, workers: opts.workers, logger, loadConfig });
  const pidFile = config.server.pidFile;
  if (pidFile !== undefined) {
    writePidFile(pidFile);
    process.once('exit', () => removePidFile(pidFile));
  }
  if (reloadPending) void primary.reload();

  const running = primary;
  let signals = 0;
  const onSignal = (signal: NodeJS.Signals) => {
    signals++;
    if (signals > 1) {
      logger.warn({ signal }, 'second signal: exiting now');
      process.exit(1);
    }
    logger.info({ signal }, 'signal received');
    void running.stop().then(async () => {
      await Promise.all(demos.map((d) => d.close()));
      process.exit(0);
    });
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
}

function fillDemoBackends(config: Config, demos: readonly DemoBackend[]): void {
  config.loadBalancer.backendServers = demos.map((d) => ({
    id: d.id, protocol: 'http', host: '127.0.0.1', port: d.port, weight: 1, healthy: true, maxConnections: 0, group: 'default',
  }));
  config.healthCheck.intervalMs = Math.min(config.healthCheck.intervalMs, 5000);
}
