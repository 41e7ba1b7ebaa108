// HTTP/2 Rapid Reset (CVE-2023-44487) through the real quiclb: a node:http2 client that opens streams and
// resets them at once, reconnecting after every GOAWAY, for about five seconds. Few of those streams may
// become backend requests, quiclb's memory stays bounded, and a well-behaved client on another connection
// keeps being served without multi-second stalls. Client resets of dispatched requests cancel their
// backend requests at once.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http2 from 'node:http2';
import { readFileSync } from 'node:fs';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import { startQuiclb } from '../support/quiclb-process.ts';
import type { QuiclbProcess } from '../support/quiclb-process.ts';
import { startRawBackend, OK_RESPONSE } from '../support/raw-answer-backend.ts';
import type { RawBackend, RawRequest } from '../support/raw-answer-backend.ts';
import { RawH2, FRAME, H2_ERROR, headerBlock } from '../support/h2-raw.ts';

const ATTACK_MS = 5000;
const execFileP = promisify(execFile);
const { NGHTTP2_CANCEL } = http2.constants;

let backend: RawBackend;
let lb: QuiclbProcess;

function answer(req: RawRequest): string | undefined {
  if (req.target.startsWith('/hold')) return undefined; // a backend that takes its time
  return OK_RESPONSE;
}

before(async () => {
  backend = await startRawBackend(answer);
  lb = await startQuiclb({
    config: {
      loadBalancer: { backendServers: [{ id: 'raw', host: backend.host, port: backend.port }], sessionPersistence: false },
      healthCheck: { enabled: false },
      quic: { enabled: false },
      logging: { accessLog: false },
    },
    workers: 1,
  });
});

after(async () => {
  await lb?.stop();
  await backend?.close();
});

function rssMiB(pid: number, field: 'VmRSS' | 'VmHWM'): number {
  const m = new RegExp(`${field}:\\s+(\\d+) kB`).exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m![1]) / 1024;
}

const ignore = () => undefined;
const ATTACKER = fileURLToPath(new URL('../support/h2-rapid-reset-client.ts', import.meta.url));

async function runAttacker(port: number, ms: number): Promise<{ opened: number; connections: number }> {
  const { stdout } = await execFileP(process.execPath, [ATTACKER, String(port), String(ms)], { timeout: ms + 20_000 });
  return JSON.parse(stdout) as { opened: number; connections: number };
}
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const url = () => `https://127.0.0.1:${lb.httpsPort}`;

/** Sequential GETs on one connection until `until`: every status and the slowest answer. */
async function wellBehaved(until: number): Promise<{ statuses: number[]; slowestMs: number }> {
  const s = http2.connect(url(), { rejectUnauthorized: false });
  s.on('error', ignore);
  const statuses: number[] = [];
  let slowestMs = 0;
  try {
    while (Date.now() < until) {
      const t0 = performance.now();
      const status = await new Promise<number>((resolve, reject) => {
        const r = s.request({ ':path': '/good' });
        let st = 0;
        r.on('response', (h) => (st = Number(h[':status'])));
        r.on('end', () => resolve(st));
        r.on('error', reject);
        r.resume();
      });
      slowestMs = Math.max(slowestMs, performance.now() - t0);
      statuses.push(status);
      await sleep(50);
    }
  } finally {
    s.close();
  }
  return { statuses, slowestMs };
}

test('Rapid Reset for 5 s with reconnects: few backend requests, bounded memory, a well-behaved client keeps being served', { timeout: 60_000 }, async (t) => {
  const pid = lb.child.pid!;
  // Warm up both paths so that the measurement is not start-up.
  await wellBehaved(Date.now() + 300);
  const rssBefore = rssMiB(pid, 'VmRSS');
  const from = backend.requests.length;
  const until = Date.now() + ATTACK_MS;
  // The attacker runs in its own process, so that its busy loop does not slow the well-behaved client here.
  const [attack, good] = await Promise.all([runAttacker(lb.httpsPort, until - Date.now()), wellBehaved(until)]);
  const dispatched = backend.requests.slice(from).filter((r) => r.target.startsWith('/rr')).length;
  const peakGrowth = rssMiB(pid, 'VmHWM') - rssBefore;
  t.diagnostic(`opened ${attack.opened} streams on ${attack.connections} connections; ${dispatched} became backend requests; ` +
    `peak RSS +${peakGrowth.toFixed(0)} MiB; well-behaved: ${good.statuses.length} requests, slowest ${good.slowestMs.toFixed(0)} ms`);
  assert.ok(attack.opened >= 2000, `the attack opened only ${attack.opened} streams`);
  assert.ok(dispatched <= attack.opened / 100, `${dispatched} of ${attack.opened} reset streams became backend requests`);
  assert.ok(peakGrowth < 100, `quiclb's peak RSS grew by ${peakGrowth.toFixed(0)} MiB`);
  assert.ok(good.statuses.length > 0 && good.statuses.every((s) => s === 200), `well-behaved statuses: ${good.statuses}`);
  assert.ok(good.slowestMs < 2000, `the well-behaved client waited ${good.slowestMs.toFixed(0)} ms`);

});

test('the per-address budget spans connections: under the per-connection budget on each, over it in all, the next connection closes at its first reset', async () => {
  // Each connection resets fewer streams than its own budget (200), but together they pass the address's
  // (800 per 10 s): a client that spreads its resets over connections is still cut off, and reconnecting
  // does not start the count over. (The sliding window forgets gradually, so this runs within a second.)
  const get = (path: string): Array<[string, string]> => [[':method', 'GET'], [':scheme', 'https'], [':authority', 'a.test'], [':path', path]];
  // Another client address, so that the Rapid Reset test above does not count here.
  const local = '127.0.0.9';
  for (let k = 0; k < 6; k++) {
    const c = await RawH2.connect(lb.httpsPort, { localAddress: local });
    try {
      let id = 1;
      for (let i = 0; i < 150; i++, id += 2) c.write(c.headersFrame(id, headerBlock(get('/spread')), true), c.rstFrame(id, H2_ERROR.CANCEL));
      c.request(id, get('/still-served'));
      const ok = await c.outcome(id);
      if (k < 5) assert.ok('status' in ok && ok.status === 200, `connection ${k}: ${JSON.stringify(ok)}`);
    } finally {
      c.close();
    }
  }
  const c = await RawH2.connect(lb.httpsPort, { localAddress: local });
  try {
    c.request(1, get('/fresh'));
    const fresh = await c.outcome(1);
    assert.ok('status' in fresh && fresh.status === 200, `a new connection is still served: ${JSON.stringify(fresh)}`);
    c.write(c.headersFrame(3, headerBlock(get('/reset')), true), c.rstFrame(3, H2_ERROR.CANCEL));
    const goaway = await c.waitFor((f) => f.type === FRAME.GOAWAY, 5000, 'GOAWAY');
    assert.equal(goaway.payload.readUInt32BE(4), H2_ERROR.ENHANCE_YOUR_CALM);
  } finally {
    c.close();
  }
});

test('a client reset of a dispatched request cancels its backend request at once', async () => {
  const s = http2.connect(url(), { rejectUnauthorized: false });
  s.on('error', ignore);
  try {
    const from = backend.requests.length;
    const streams = Array.from({ length: 10 }, (_, i) => {
      const r = s.request({ ':path': `/hold${i}` });
      r.on('error', ignore);
      return r;
    });
    for (let i = 0; i < 250 && backend.requests.length - from < 10; i++) await sleep(20);
    const held = backend.requests.slice(from);
    assert.equal(held.length, 10, 'every request reached the backend');
    const resetAt = performance.now();
    for (const r of streams) r.close(NGHTTP2_CANCEL);
    await Promise.race([Promise.all(held.map((r) => r.conn.closed)), sleep(5000).then(() => assert.fail('backend requests still open 5 s after the client reset them'))]);
    assert.ok(performance.now() - resetAt < 2000, `backend requests were cancelled ${(performance.now() - resetAt).toFixed(0)} ms after the resets`);
  } finally {
    s.destroy();
  }
});
