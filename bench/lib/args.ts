// Command line of `npm run bench -- [options]`.
import { availableParallelism } from 'node:os';
import { parseArgs } from 'node:util';
import { BenchError } from './procs.ts';

export interface BenchOptions {
  quick: boolean;
  scenario?: string;
  durationS: number;
  warmupS: number;
  connections: number;
  streams: number;
  threads: number;
  /** Total req/s for the fixed-rate mode; 0 = closed loop. */
  rate: number;
  shards: number[];
  /** Peers to run beside quiclb when installed; [] = none. */
  peers: string[];
  outDir: string;
  list: boolean;
}

export const USAGE = `usage: npm run bench -- [options]
  --quick               the representative subset (see bench/README.md), 1 s per run: under a minute
  --scenario NAMES      comma list of scenario names or substrings (e.g. h2-64k, h1-small-keepalive-1shard)
  --duration S          measured seconds per run (default 3, quick 1)
  --warmup S            unmeasured seconds before each run (default 0.5, quick 0.3)
  --connections N       concurrent requests (default 16)
  --streams N           streams per connection for HTTP/2 and HTTP/3 keep-alive (default 4)
  --threads N           load-generator worker threads (default: min(4, cores))
  --rate R              fixed-rate mode: R requests/s in total, latency corrected for coordinated omission
                        (default: closed loop, max throughput)
  --shards LIST         quiclb shard counts (default 1,2)
  --peers LIST          peers to compare, when installed (default nginx,haproxy,caddy); --no-peers for none
  --out DIR             where results go (default bench/results)
  --list                print the scenario names and exit`;

function positive(name: string, v: string | undefined, dflt: number, allowZero = false): number {
  if (v === undefined) return dflt;
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0 || (!allowZero && n === 0)) throw new BenchError('BENCH_ARGS', `--${name}: expected a ${allowZero ? 'non-negative' : 'positive'} number, got "${v}"`);
  return n;
}

export function parseBenchArgs(argv: string[]): BenchOptions {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        quick: { type: 'boolean', default: false },
        scenario: { type: 'string' },
        duration: { type: 'string' },
        warmup: { type: 'string' },
        connections: { type: 'string' },
        streams: { type: 'string' },
        threads: { type: 'string' },
        rate: { type: 'string' },
        shards: { type: 'string' },
        peers: { type: 'string' },
        'no-peers': { type: 'boolean', default: false },
        out: { type: 'string' },
        list: { type: 'boolean', default: false },
        help: { type: 'boolean', short: 'h', default: false },
      },
      strict: true,
    }));
  } catch (err) {
    throw new BenchError('BENCH_ARGS', `${(err as Error).message}\n${USAGE}`);
  }
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    process.exit(0);
  }
  const quick = values.quick;
  const shards = (values.shards ?? '1,2').split(',').map((s) => positive('shards', s, 1));
  return {
    quick,
    scenario: values.scenario,
    durationS: positive('duration', values.duration, quick ? 1 : 3),
    warmupS: positive('warmup', values.warmup, quick ? 0.3 : 0.5, true),
    connections: Math.round(positive('connections', values.connections, 16)),
    streams: Math.round(positive('streams', values.streams, 4)),
    threads: Math.round(positive('threads', values.threads, Math.min(4, availableParallelism()))),
    rate: positive('rate', values.rate, 0, true),
    shards,
    peers: values['no-peers'] ? [] : (values.peers ?? 'nginx,haproxy,caddy').split(',').filter(Boolean),
    outDir: values.out ?? new URL('../results', import.meta.url).pathname,
    list: values.list,
  };
}
