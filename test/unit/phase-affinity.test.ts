// The affinity phase in a real pipeline, behind the real proxy phase and two node:http backends: the answer
// of a backend gets the affinity cookie that pins the client to it (Secure over TLS only), the Moodle session
// id that backend issued is learned in the shared session table, a client already pinned gets no new cookie,
// and quiclb's own answers (no backend) get none.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { validateConfig } from '../../src/config/load.ts';
import { affinityPhase } from '../../src/pipeline/phases/affinity.ts';
import { proxyPhase } from '../../src/pipeline/phases/proxy.ts';
import type { Phase } from '../../src/pipeline/phase.ts';
import { affinityToken } from '../../src/balancer/affinity.ts';
import { startOrigin } from '../support/origin.ts';
import { headerValues, httpBackend, proxyRig, runPhases } from '../support/phase-rig.ts';

let sid = 0;
/** Each backend issues a new Moodle session to a client that has none, as Moodle does on a first visit. */
const moodle = (name: string) =>
  startOrigin((req, res) => {
    if (!/MoodleSession=/.test(req.headers.cookie ?? '')) res.setHeader('set-cookie', `MoodleSession=${name}-${++sid}; path=/; HttpOnly`);
    res.end(name);
  });
const a = await moodle('a');
const b = await moodle('b');
after(() => Promise.all([a.close(), b.close()]));

function rig() {
  const r = proxyRig({
    loadBalancer: { backendServers: [httpBackend('moodle-a', Number(new URL(a.url).port)), httpBackend('moodle-b', Number(new URL(b.url).port))] },
  });
  const phases = [affinityPhase(r.balancer, r.config.loadBalancer.sessionPersistence), proxyPhase(r.config, r.forwarder)];
  return { ...r, phases };
}

test('affinity: a backend\'s answer pins the client (Secure over TLS) and its Moodle session id is learned', async () => {
  const { phases, sessions, close } = rig();
  try {
    for (const scheme of ['https', 'http'] as const) {
      const { r, ex } = await runPhases(phases, { scheme, path: '/login/index.php' });
      assert.ok(ex.backend !== undefined);
      assert.equal(r.body.toString(), ex.backend.id.slice(-1), 'the answer came from the chosen backend');
      const cookies = headerValues(r, 'set-cookie');
      const moodleCookie = cookies.find((c) => c.startsWith('MoodleSession='));
      assert.ok(moodleCookie, 'the backend\'s own Set-Cookie passes untouched');
      const affinity = `QUICLB_AFFINITY=${affinityToken(ex.backend)}; Path=/; HttpOnly; SameSite=Lax${scheme === 'https' ? '; Secure' : ''}`;
      assert.deepEqual(cookies, [moodleCookie, affinity]);
      const issued = /^MoodleSession=([^;]+)/.exec(moodleCookie)![1];
      assert.equal(sessions.lookup(issued), ex.backend.index, 'the session id now leads to its backend');
    }
  } finally {
    await close();
  }
});

test('affinity: a client already pinned (cookies split over HTTP/2 fields) gets no new cookie and stays put', async () => {
  const { phases, close } = rig();
  try {
    const first = await runPhases(phases, { scheme: 'https' });
    const pinned = first.ex.backend!;
    const session = /^MoodleSession=([^;]+)/.exec(headerValues(first.r, 'set-cookie')[0])![1];
    for (let i = 0; i < 4; i++) {
      const again = await runPhases(phases, {
        scheme: 'https',
        protocol: 'HTTP/2',
        headers: [['host', 'moodle.example.edu'], ['cookie', `QUICLB_AFFINITY=${affinityToken(pinned)}`], ['cookie', `MoodleSession=${session}`]],
      });
      assert.equal(again.ex.backend?.id, pinned.id, 'round robin alone would have moved it');
      assert.deepEqual(headerValues(again.r, 'set-cookie'), []);
    }
  } finally {
    await close();
  }
});

test('affinity: quiclb\'s own answers (no backend chosen) get no cookie; sessionPersistence off, there is no phase', async () => {
  const { balancer, close } = rig();
  await close();
  const refuse: Phase = {
    name: 'refuse',
    request(ex) {
      ex.answer(429, 'slow down');
      return true;
    },
  };
  const { r } = await runPhases([affinityPhase(balancer, true), refuse]);
  assert.equal(r.status, 429);
  assert.deepEqual(headerValues(r, 'set-cookie'), []);
  const off = validateConfig({ loadBalancer: { sessionPersistence: false } });
  assert.equal(affinityPhase(balancer, off.loadBalancer.sessionPersistence), undefined);
});
