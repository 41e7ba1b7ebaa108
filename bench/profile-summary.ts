// Summarizes V8 CPU profiles (.cpuprofile, as `node --cpu-prof` or `npm run bench -- --profile` write them):
// per thread, the busy time and the functions and files with the most self time.
//   node bench/profile-summary.ts DIR_OR_FILE... [--top N]
import { statSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { findProfiles, formatSummaries, summarizeProfile } from './lib/cpuprofile.ts';

const { values, positionals } = parseArgs({ allowPositionals: true, options: { top: { type: 'string', default: '15' } } });
if (positionals.length === 0) {
  process.stderr.write('usage: node bench/profile-summary.ts DIR_OR_FILE... [--top N]\n');
  process.exit(2);
}
const files = positionals.flatMap((p) => (statSync(p).isDirectory() ? findProfiles(p) : [p]));
process.stdout.write(formatSummaries(files.map((f) => summarizeProfile(f)), Number(values.top)));
