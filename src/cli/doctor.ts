// `quiclb doctor`: placeholder until the tuning issue lands; reports that it checks nothing yet.
import type { Config } from '../config/types.ts';

export async function runDoctor(_config: Config): Promise<number> {
  process.stderr.write('quiclb doctor: not implemented yet (see issue "npm run bench ... tuning/")\n');
  return 2;
}
