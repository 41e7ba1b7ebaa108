// `quiclb start`: optional demo backends, the primary, and signal handling for a graceful drain.
import type { Config } from '../config/types.ts';
import type { Logger } from '../shared/logger.ts';
import { startPrimary } from '../primary/primary.ts';
import { startDemoBackend } from '../demo/backends.ts';
import type { DemoBackend } from '../demo/backends.ts';

export interface StartOptions {
  config: Config;
  workers?: number;
  demo: boolean;
  logger: Logger;
  hasConfigFile: boolean;
}

export async function runStart(opts: StartOptions): Promise<void> {
  const { config, logger } = opts;
  const demos: DemoBackend[] = [];
  if (config.loadBalancer.backendServers.length === 0) {
    if (!opts.demo) {
      process.stderr.write(
        'quiclb: invalid config: loadBalancer.backendServers: expected at least one backend, got [] (add backends, set BACKEND_SERVERS, or run `quiclb start --demo`)\n',
      );
      process.exit(2);
    }
    for (const id of ['demo-1', 'demo-2']) demos.push(await startDemoBackend(id, 0));
    config.loadBalancer.backendServers = demos.map((d) => ({
      id: d.id, protocol: 'http', host: '127.0.0.1', port: d.port, weight: 1, healthy: true, maxConnections: 0, group: 'default',
    }));
    config.healthCheck.intervalMs = Math.min(config.healthCheck.intervalMs, 5000);
    logger.warn({ backends: demos.map((d) => `${d.id}=127.0.0.1:${d.port}`) }, 'DEMO MODE: serving two built-in demo backends; configure loadBalancer.backendServers for real use');
  }
  const primary = await startPrimary({ config, workers: opts.workers, logger });
  let signals = 0;
  const onSignal = (signal: NodeJS.Signals) => {
    signals++;
    if (signals > 1) {
      logger.warn({ signal }, 'second signal: exiting now');
      process.exit(1);
    }
    logger.info({ signal }, 'signal received');
    void primary.stop().then(async () => {
      await Promise.all(demos.map((d) => d.close()));
      process.exit(0);
    });
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
}
