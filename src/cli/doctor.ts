// `quiclb doctor`: checks this host for what `quiclb start` needs (UDP buffers, open-file limit, listen
// backlog, free ports, certificate, key ring, the quiche binding, php-fpm sockets) and prints one line per check with the fix, pointing at tuning/.
// Exit code 0 when nothing FAILs (warnings allowed), 1 otherwise.
import type { Config } from '../config/types.ts';
import { checkCertificate, checkFastCgiBackends, checkKeyRing, checkListenBacklog, checkNofile, checkPorts, checkQuicheBinding, checkUdpBufferSizes } from './doctor-checks.ts';
import type { CheckResult } from './doctor-checks.ts';

/** `OK    name: detail — fix: ...`; the status is padded so the names line up. */
export function formatResult(r: CheckResult): string {
  return `${r.status.padEnd(4)}  ${r.name}: ${r.detail}${r.fix ? ` — fix: ${r.fix}` : ''}`;
}

export async function collectChecks(config: Config): Promise<CheckResult[]> {
  return [
    await checkUdpBufferSizes(config),
    checkNofile(),
    checkListenBacklog(),
    ...(await checkPorts(config)),
    ...checkCertificate(config),
    checkKeyRing(config),
    checkQuicheBinding(config),
    ...(await checkFastCgiBackends(config)),
  ];
}

export async function runDoctor(config: Config): Promise<number> {
  const results = await collectChecks(config);
  const count = (s: CheckResult['status']) => results.filter((r) => r.status === s).length;
  const lines = results.map(formatResult);
  lines.push(`quiclb doctor: ${count('FAIL')} failed, ${count('WARN')} warning(s), ${count('OK')} ok`);
  process.stdout.write(`${lines.join('\n')}\n`);
  return count('FAIL') > 0 ? 1 : 0;
}
