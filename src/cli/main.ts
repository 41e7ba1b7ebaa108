// quiclb command line: start | reload | generate-config | check-config | doctor | help.
// Old spellings stay accepted: `--generate-config` and `-config FILE`.
import { parseArgs } from 'node:util';
import { writeFile } from 'node:fs/promises';
import { loadConfig, defaultConfigJson, phpFpmConfigJson, toJson, isConfigError } from '../config/load.ts';
import { createLogger } from '../shared/logger.ts';
import { runStart } from './start.ts';
import { runDoctor } from './doctor.ts';
import { runCachePurge } from './cache-purge.ts';
import { isCacheStoreError } from '../cache/errors.ts';
import { runReload } from './reload.ts';
import { PID_FILE_ERROR } from './pid-file.ts';

const USAGE = `quiclb — HTTP/3 + HTTP/2 + HTTP/1.1 load balancer

Usage:
  quiclb start [--config FILE] [--workers N] [--demo]
  quiclb reload [--pid-file FILE] [--config FILE]
                                               re-read the configuration of the running quiclb (SIGHUP to
                                               the pid in FILE, or in the config's server.pidFile; --config
                                               is validated here first)
  quiclb generate-config [--out FILE]          write a config holding every default (stdout without --out;
                                               the old spelling --generate-config writes ./config.json)
  quiclb generate-config --php-fpm SOCKET --www-root DIR [--data-root DIR] [--out FILE]
                                               the same for Moodle on php-fpm with no web server between:
                                               moodle.phpFpmSocket + moodle.wwwRoot (one FastCGI backend
                                               "php-fpm"; quiclb serves static files and X-Accel-Redirect)
  quiclb check-config FILE                     validate a config and print the effective settings
  quiclb doctor [--config FILE]                check this host (UDP buffers, file limits, ports, certificate)
  quiclb cache purge [PREFIX] [--config FILE]  remove stored responses from the response cache's store file
                                               (all, or those whose path "/theme/" or URL
                                               "https://host/theme/" starts with PREFIX); safe while quiclb runs

Options:
  --config FILE   JSON config (see README "Configuration"); env BIND_ADDRESS, BACKEND_SERVERS,
                  SSL_CERT_PATH, SSL_KEY_PATH override it
  --workers N     worker shards (default: number of CPU cores)
  --demo          start two labelled demo backends beside quiclb when no backends are configured
  --pid-file FILE the running quiclb's pid file (reload)
  -h, --help      this text
`;

/** Where the old `--generate-config` flag wrote its seed config (the current directory), when no --out is given. */
export const OLD_GENERATE_CONFIG_FILE = 'config.json';

/** Maps the old single-dash and flag spellings onto the current ones. */
export function normalizeArgv(argv: string[]): string[] {
  const out: string[] = [];
  let oldGenerate = false;
  for (const arg of argv) {
    if (arg === '-config') out.push('--config');
    else if (arg.startsWith('-config=')) out.push(`--config=${arg.slice(8)}`);
    else if (arg === '--generate-config' || arg === '-generate-config') {
      out.push('generate-config');
      oldGenerate = true;
    } else out.push(arg);
  }
  // The old flag wrote config.json into the current directory; `generate-config` prints to stdout.
  const hasOut = out.some((a) => a === '--out' || a === '-o' || a.startsWith('--out=') || (a.startsWith('-o') && a.length > 2));
  if (oldGenerate && !hasOut) out.push('--out', OLD_GENERATE_CONFIG_FILE);
  // `quiclb --config x.json` with no command means start, as the old binary did.
  const first = out.find((a) => !a.startsWith('-'));
  const commands = new Set(['start', 'reload', 'generate-config', 'check-config', 'doctor', 'cache', 'help']);
  if (!first || !commands.has(first)) {
    if (!out.includes('-h') && !out.includes('--help')) out.unshift('start');
  }
  return out;
}

function fail(message: string): never {
  process.stderr.write(`quiclb: ${message}\n`);
  process.exit(2);
}

export async function main(argv: string[]): Promise<void> {
  const args = normalizeArgv(argv);
  let parsed;
  try {
    parsed = parseArgs({
      args,
      allowPositionals: true,
      options: {
        config: { type: 'string', short: 'c' },
        workers: { type: 'string', short: 'w' },
        out: { type: 'string', short: 'o' },
        'php-fpm': { type: 'string' },
        'www-root': { type: 'string' },
        'data-root': { type: 'string' },
        demo: { type: 'boolean' },
        'pid-file': { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (err) {
    fail(`${(err as Error).message}\n\n${USAGE}`);
  }
  const { values, positionals } = parsed;
  const command = positionals[0] ?? 'start';
  if (values.help || command === 'help') {
    process.stdout.write(USAGE);
    return;
  }
  const env = process.env as Record<string, string | undefined>;
  const load = (file?: string) => {
    try {
      return loadConfig({ file, env });
    } catch (err) {
      const e = err as Error & { code?: string };
      if (e.code === 'QUICLB_CONFIG') fail(`invalid config: ${e.message}`);
      throw err;
    }
  };

  switch (command) {
    case 'generate-config': {
      const socket = values['php-fpm'];
      if (socket === undefined && (values['www-root'] !== undefined || values['data-root'] !== undefined)) fail('--www-root and --data-root go with --php-fpm SOCKET');
      if (socket !== undefined && values['www-root'] === undefined) fail("--php-fpm needs --www-root DIR (the directory of Moodle's code)");
      const doc = socket === undefined ? defaultConfigJson() : phpFpmConfigJson({ socket, wwwRoot: values['www-root'] as string, dataRoot: values['data-root'] });
      const text = `${JSON.stringify(doc, null, 2)}\n`;
      if (values.out) {
        await writeFile(values.out, text, { flag: 'wx' }).catch((err: NodeJS.ErrnoException) =>
          fail(err.code === 'EEXIST' ? `${values.out} exists; not overwriting it` : err.message),
        );
        process.stderr.write(`quiclb: wrote ${values.out}\n`);
      } else process.stdout.write(text);
      return;
    }
    case 'check-config': {
      const file = positionals[1] ?? values.config;
      if (!file) fail('check-config needs a FILE');
      const config = load(file);
      process.stdout.write(`${JSON.stringify(toJson(config), null, 2)}\n`);
      process.stderr.write(`quiclb: ${file} is valid\n`);
      return;
    }
    case 'reload': {
      const config = values.config === undefined ? undefined : load(values.config);
      process.exitCode = runReload({ pidFile: values['pid-file'], config, configFile: values.config });
      return;
    }
    case 'doctor': {
      const config = load(values.config);
      process.exitCode = await runDoctor(config);
      return;
    }
    case 'cache': {
      if (positionals[1] !== 'purge' || positionals.length > 3) fail(`usage: quiclb cache purge [PREFIX] [--config FILE]\n\n${USAGE}`);
      const config = load(values.config);
      try {
        process.exitCode = runCachePurge(config, positionals[2]);
      } catch (err) {
        if (isCacheStoreError(err)) fail(err.message);
        throw err;
      }
      return;
    }
    case 'start': {
      const config = load(values.config);
      let workers: number | undefined;
      if (values.workers !== undefined) {
        workers = Number(values.workers);
        if (!Number.isInteger(workers) || workers < 1) fail(`--workers: expected a positive integer, got "${values.workers}"`);
      }
      // The newcomer's `npm start` (demo, no config file, a terminal) reads better as pretty lines.
      if (values.demo && values.config === undefined && process.stdout.isTTY) config.logging.format = 'pretty';
      const logger = createLogger(config.logging);
      // A reload reads the same file with the same environment again, and validates it the same way.
      const reloadConfig = () => loadConfig({ file: values.config, env });
      try {
        await runStart({ config, workers, demo: values.demo ?? false, logger, hasConfigFile: values.config !== undefined, reloadConfig });
      } catch (err) {
        // What only the start finds (an unusable certificate or key ring) is a config error like any other.
        if (isConfigError(err)) fail(`invalid config: ${err.message}`);
        if (isCacheStoreError(err)) fail(err.message);
        if ((err as { code?: string }).code === PID_FILE_ERROR) fail((err as Error).message);
        throw err;
      }
      return;
    }
    default:
      fail(`unknown command "${command}"\n\n${USAGE}`);
  }
}
