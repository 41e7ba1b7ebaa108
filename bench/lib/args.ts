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
  /** Peers to run beside quiclb when installed (node15 included); [] = none. */
  peers: string[];
  outDir: string;
  list: boolean;
  /** 'auto': wrk and h2load where installed and able (see generators.ts); 'own': our client everywhere. */
  generator: 'auto' | 'own';
  /** After each closed-loop run, a fixed-rate run at half the req/s it reached, for latency. */
  halfPeak: boolean;
  /** Run the idle-connection memory scenario instead of the matrix; counts per protocol. */
  idleConns: { h1: number; h2: number; h3: number } | undefined;
  /** Run quiclb's threads under V8's CPU profiler and summarize the profiles. */
  profile: boolean;
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
  --peers LIST          other targets: node15 (the 15-line Node proxy), nginx, haproxy, caddy (default: all,
                        those installed); --no-peers for none
  --generator G         auto (default): wrk for HTTP/1.1, h2load for HTTP/2 and fixed rates, where installed;
                        own: our own client (undici, HTTP/3 client) everywhere
  --half-peak           after each closed-loop run, one at half the req/s it reached: p50/p99 at half of peak
  --idle-conns          memory: RSS of quiclb --workers 1 before and after 10,000 idle HTTP/1.1, 2,000 HTTP/2 and
                        2,000 HTTP/3 keep-alive connections (--idle-h1 N --idle-h2 N --idle-h3 N to change)
  --profile             run quiclb under V8's CPU profiler (--cpu-prof, every thread); writes .cpuprofile files
                        and a summary of the top self-time functions next to the report
  --out DIR             where results go (default bench/results)
  --list                print the scenario names and exit
  Scenario groups for --scenario: acceptance (the per-request-cost issue's keep-alive scenarios), cache (a
  cacheable stylesheet through quiclb's response cache and nginx proxy_cache, HTTP/1.1, HTTP/2, HTTP/3).`;

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
        generator: { type: 'string', default: 'auto' },
        'half-peak': { type: 'boolean', default: false },
        'idle-conns': { type: 'boolean', default: false },
        'idle-h1': { type: 'string' },
        'idle-h2': { type: 'string' },
        'idle-h3': { type: 'string' },
        profile: { type: 'boolean', default: false },
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
  if (values.generator !== 'auto' && values.generator !== 'own') throw new BenchError('BENCH_ARGS', `--generator: expected auto or own, got "${values.generator}"`);
  const count = (name: string, v: string | undefined, dflt: number): number => Math.round(positive(name, v, dflt, true));
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
    peers: values['no-peers'] ? [] : (values.peers ?? 'node15,nginx,haproxy,caddy').split(',').filter(Boolean),
    outDir: values.out ?? new URL('../results', import.meta.url).pathname,
    list: values.list,
    generator: values.generator,
    halfPeak: values['half-peak'],
    idleConns: values['idle-conns']
      ? { h1: count('idle-h1', values['idle-h1'], 10_000), h2: count('idle-h2', values['idle-h2'], 2000), h3: count('idle-h3', values['idle-h3'], 2000) }
      : undefined,
    profile: values.profile,
  };
}
