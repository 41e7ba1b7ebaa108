// The proxy phase in a real pipeline with a real Forwarder, Balancer and SharedState, forwarding to node:http
// backends on 127.0.0.1: what the backend receives (method, target, rewritten header fields, the exchange's
// body), what comes back through the exchange (status, fields, body, through the response filters), what it
// records on the exchange (backend, attempts, 499) and in SharedState, and how a backend failure is answered
// (502; a retry on the other backend for an idempotent request; 503 when no backend is left).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import { proxyPhase } from '../../src/pipeline/phases/proxy.ts';
import type { Phase } from '../../src/pipeline/phase.ts';
import { affinityToken } from '../../src/balancer/affinity.ts';
import { BC_ERRORS, BC_FAILOVERS, BC_REQUESTS, G_NO_BACKEND, B_HEALTHY, B_PASSIVE_FAILS } from '../../src/shared/state.ts';
import { freePort } from '../../bench/lib/procs.ts';
import { header } from '../support/memory-exchange.ts';
import { httpBackend, proxyRig, runPhases, startPhases } from '../support/phase-rig.ts';

interface Seen {
  method: string;
  url: string;
  /** Header fields as received, names lowercased, repeated fields kept apart. */
  fields: Array<[string, string]>;
  body: string;
}

/** A node:http backend that records each request whole, then lets `answer` respond. */
async function backend(answer: (req: IncomingMessage, res: ServerResponse) => void = (_req, res) => res.end('ok')) {
  const seen: Seen[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const fields: Array<[string, string]> = [];
      for (let i = 0; i < req.rawHeaders.length; i += 2) fields.push([req.rawHeaders[i].toLowerCase(), req.rawHeaders[i + 1]]);
      seen.push({ method: req.method ?? '', url: req.url ?? '', fields, body: Buffer.concat(chunks).toString() });
      answer(req, res);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as AddressInfo).port,
    seen,
    close: () => {
      server.closeAllConnections();
      return new Promise<void>((r) => server.close(() => r()));
    },
  };
}

const moodle = await backend((req, res) => {
  if (req.url === '/slow') return void setTimeout(() => res.end('late'), 2000).unref();
  res.writeHead(201, [['content-type', 'text/plain'], ['x-moodle', 'yes'], ['connection', 'keep-alive, x-hop'], ['x-hop', 'one hop only']]);
  res.end(`created ${req.method} ${req.url}`);
});
const deadPort = await freePort(); // nothing listens here: connections are refused
after(() => moodle.close());

const fields = (s: Seen, name: string) => s.fields.filter(([n]) => n === name).map(([, v]) => v);

test('proxy: the backend gets the method, target, body and rewritten fields; its answer comes back through the filters', async () => {
  const rig = proxyRig({ loadBalancer: { backendServers: [httpBackend('moodle-a', moodle.port)] } });
  const stamp: Phase = { name: 'stamp', response: (_ex, head) => void head.headers.push(['x-filtered', String(head.status)]) };
  try {
    const { r, ex } = await runPhases([stamp, proxyPhase(rig.config, rig.forwarder)], {
      protocol: 'HTTP/2',
      method: 'POST',
      scheme: 'https',
      authority: 'moodle.example.edu',
      path: '/mod/forum/post.php?reply=3',
      localPort: 9443,
      remoteAddress: '198.51.100.23',
      headers: [
        ['host', 'moodle.example.edu'],
        ['content-type', 'application/x-www-form-urlencoded'],
        ['content-length', '10'],
        ['cookie', 'MoodleSession=s1'],
        ['cookie', 'theme=boost'],
        ['x-forwarded-proto', 'http'],
        ['x-real-ip', '10.6.6.6'],
        ['te', 'trailers'],
      ],
      bodyText: 'message=hi',
    });
    const s = moodle.seen.at(-1)!;
    assert.equal(s.method, 'POST');
    assert.equal(s.url, '/mod/forum/post.php?reply=3');
    assert.equal(s.body, 'message=hi');
    assert.deepEqual(fields(s, 'host'), ['moodle.example.edu']);
    assert.deepEqual(fields(s, 'cookie'), ['MoodleSession=s1; theme=boost'], 'split cookie fields joined into one');
    assert.deepEqual(fields(s, 'x-forwarded-for'), ['198.51.100.23']);
    assert.deepEqual(fields(s, 'x-forwarded-proto'), ['https'], 'the client\'s value is replaced, never trusted');
    assert.deepEqual(fields(s, 'x-forwarded-host'), ['moodle.example.edu']);
    assert.deepEqual(fields(s, 'x-forwarded-port'), ['9443']);
    assert.deepEqual(fields(s, 'forwarded'), ['for=198.51.100.23;proto=https;host=moodle.example.edu']);
    assert.deepEqual(fields(s, 'x-real-ip'), [], 'a client-sent address field is dropped');
    assert.deepEqual(fields(s, 'te'), []);

    assert.equal(r.status, 201);
    assert.equal(r.body.toString(), 'created POST /mod/forum/post.php?reply=3');
    assert.equal(header(r.headers, 'x-moodle'), 'yes');
    assert.equal(header(r.headers, 'x-hop'), undefined, 'a field Connection names stays on the backend hop');
    assert.equal(header(r.headers, 'x-filtered'), '201', 'the backend answer passed the response filters');
    assert.equal(ex.status, 201);
    assert.equal(ex.backend?.id, 'moodle-a');
    assert.equal(ex.attempts, 1);
    assert.equal(rig.state.backendCounter(0, BC_REQUESTS), 1n);
    assert.equal(rig.state.backendCounter(0, BC_ERRORS), 0n);
  } finally {
    await rig.close();
  }
});

test('proxy: the backend gets the exchange\'s body (as an earlier phase left it), not the raw request body', async () => {
  const rig = proxyRig({ loadBalancer: { backendServers: [httpBackend('moodle-a', moodle.port)] } });
  const wrap: Phase = {
    name: 'wrap',
    request(ex) {
      ex.body = Readable.from([Buffer.from('replaced')]);
      return false;
    },
  };
  try {
    const { r } = await runPhases([wrap, proxyPhase(rig.config, rig.forwarder)], { method: 'PUT', path: '/upload', bodyText: 'original' });
    assert.equal(r.status, 201);
    assert.equal(moodle.seen.at(-1)?.body, 'replaced');
  } finally {
    await rig.close();
  }
});

test('proxy: a backend that refuses the connection is a 502 from quiclb, counted against that backend', async () => {
  const rig = proxyRig({ loadBalancer: { backendServers: [httpBackend('dead', deadPort)], retryIdempotent: false } });
  try {
    for (const init of [{ path: '/course/' }, { method: 'POST', path: '/course/', bodyText: 'x' }]) {
      const { r, ex } = await runPhases([proxyPhase(rig.config, rig.forwarder)], init);
      assert.equal(r.status, 502);
      assert.match(r.body.toString(), /^502 Bad Gateway: backend dead could not be reached \(ECONNREFUSED\)/);
      assert.equal(ex.answeredBy, 'proxy');
      assert.equal(ex.backend?.id, 'dead');
      assert.equal(ex.attempts, 1);
    }
    assert.equal(rig.state.backendCounter(0, BC_ERRORS), 2n);
    assert.equal(rig.state.backendGauge(0, B_PASSIVE_FAILS), 2);
  } finally {
    await rig.close();
  }
});

test('proxy: with retries on and one backend, a GET it failed is a 503: no other backend is left to try', async () => {
  const rig = proxyRig({ loadBalancer: { backendServers: [httpBackend('dead', deadPort)] } });
  try {
    const { r, ex } = await runPhases([proxyPhase(rig.config, rig.forwarder)], { path: '/course/' });
    assert.equal(r.status, 503);
    assert.match(r.body.toString(), /every backend that was tried failed/);
    assert.equal(ex.attempts, 1);
    assert.equal(rig.state.backendCounter(0, BC_FAILOVERS), 1n);
  } finally {
    await rig.close();
  }
});

test('proxy: an idempotent request is retried once on the other backend; a request with a body is not', async () => {
  const rig = proxyRig({ loadBalancer: { backendServers: [httpBackend('dead', deadPort), httpBackend('moodle-a', moodle.port)] } });
  // The affinity cookie sends the first attempt to the dead backend whatever the strategy would pick.
  const toDead = [['host', 'moodle.example.edu'], ['cookie', `QUICLB_AFFINITY=${affinityToken({ id: 'dead' })}`]] as Array<[string, string]>;
  try {
    const get = await runPhases([proxyPhase(rig.config, rig.forwarder)], { path: '/my/', headers: toDead });
    assert.equal(get.r.status, 201);
    assert.equal(get.r.body.toString(), 'created GET /my/');
    assert.equal(get.ex.backend?.id, 'moodle-a');
    assert.equal(get.ex.attempts, 2);
    assert.equal(rig.state.backendCounter(0, BC_FAILOVERS), 1n);
    assert.equal(rig.state.backendCounter(0, BC_ERRORS), 1n);

    const before = moodle.seen.length;
    const post = await runPhases([proxyPhase(rig.config, rig.forwarder)], { method: 'POST', path: '/my/', headers: [...toDead, ['content-length', '1']], bodyText: 'x' });
    assert.equal(post.r.status, 502);
    assert.equal(post.ex.attempts, 1);
    assert.equal(moodle.seen.length, before, 'the body was not sent twice');
  } finally {
    await rig.close();
  }
});

test('proxy: no healthy backend is a 503 with Retry-After, counted as no-backend', async () => {
  const rig = proxyRig({ loadBalancer: { backendServers: [httpBackend('moodle-a', moodle.port)] } });
  rig.state.setBackendGauge(0, B_HEALTHY, 0);
  try {
    const { r, ex } = await runPhases([proxyPhase(rig.config, rig.forwarder)], { path: '/' });
    assert.equal(r.status, 503);
    assert.equal(header(r.headers, 'retry-after'), '5');
    assert.equal(ex.backend, undefined);
    assert.equal(ex.attempts, 0);
    assert.equal(rig.state.globalCounter(G_NO_BACKEND), 1n);
  } finally {
    await rig.close();
  }
});

test('proxy: a client that leaves mid-request is 499 on the exchange and never a failure of the backend', async () => {
  const rig = proxyRig({ loadBalancer: { backendServers: [httpBackend('moodle-a', moodle.port)] } });
  try {
    const before = moodle.seen.length;
    const { m, ran } = startPhases([proxyPhase(rig.config, rig.forwarder)], { path: '/slow' });
    while (moodle.seen.length === before) await new Promise((r) => setTimeout(r, 5));
    m.clientLeaves();
    const { r, ex } = await ran;
    assert.equal(r.aborted, true);
    assert.equal(ex.status, 499);
    assert.equal(rig.state.backendCounter(0, BC_ERRORS), 0n);
    assert.equal(rig.state.backendGauge(0, B_PASSIVE_FAILS), 0);
  } finally {
    await rig.close();
  }
});
