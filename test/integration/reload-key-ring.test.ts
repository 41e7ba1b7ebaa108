// Key ring rotation by reload (SIGHUP) against the real quiclb process: the reload reads tls.keyRing again.
//   - TLS over TCP (node:tls clients, 2 shards): node:tls holds one ticket key, so a ticket of the old key gets a
//     full handshake after the rotation; a ticket issued after it resumes on both shards. A reload that finds
//     the ring unchanged changes no key (an old ticket still resumes).
//   - QUIC (quiche client, quic.retryThreshold 0 so every connection starts with a Retry): a Retry token minted
//     before a rotation that keeps its key below the new one still opens the connection after it; after a
//     rotation that drops that key the same kind of token is refused (counted as a bad token). QUIC session
//     tickets follow the first key like TLS's. HTTP/3 requests work after each rotation.
//   - A key ring others may read, one with garbage, or a missing one refuses the reload naming tls.keyRing, and
//     the running keys stay.
//   - Stateless resets (the primary in this process, so the test can kill its shard): connections opened before a
//     rotation that keeps the old key are reset with their own token, by the primary while their shard is dead
//     and by the restarted shard; after a rotation that drops the old key the reset goes out but the client does
//     not recognise it (it would wait for its idle timeout).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import tls from 'node:tls';
import { randomBytes } from 'node:crypto';
import { chmod, mkdtemp, readFile, rename, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { startQuiclb, type QuiclbProcess } from '../support/quiclb-process.ts';
import { startIdBackend, type IdBackend } from '../support/id-backend.ts';
import { getJson } from '../support/http-client.ts';
import { QuicStepClient } from '../support/quic-step-client.ts';
import { H3Connection } from '../../bench/lib/h3-client.ts';
import pino from 'pino';
import { startPrimary } from '../../src/primary/primary.ts';
import { validateConfig } from '../../src/config/load.ts';
import { G_QUIC_STATELESS_RESETS, G_SHARD_RESTARTS } from '../../src/shared/state.ts';
import { freePort } from '../../bench/lib/procs.ts';
import { KeyRing } from '../../src/shared/key-ring.ts';
import { keyTag } from '../../src/wire/stateless-reset.ts';

const procs: QuiclbProcess[] = [];
const backends: IdBackend[] = [];
after(async () => {
  for (const p of procs) await p.stop();
  for (const b of backends) await b.close();
});

/** Writes the ring whole under a temporary name and renames it into place, mode 0600 (as an operator's script would). */
async function writeRing(file: string, keys: Buffer[], mode = 0o600): Promise<void> {
  const tmp = `${file}.tmp`;
  await writeFile(tmp, `# test key ring\n${keys.map((k) => k.toString('base64')).join('\n')}\n`, { mode });
  await chmod(tmp, mode);
  await rename(tmp, file);
}

async function start(opts: { keyRing: string; quic: boolean; workers: number }): Promise<QuiclbProcess> {
  const backend = await startIdBackend('b1');
  backends.push(backend);
  const lb = await startQuiclb({
    config: {
      tls: { keyRing: opts.keyRing },
      // Every connection through a Retry, with the default idle timeout (src/wire/cid.ts: why CIDs are 16 octets).
      quic: opts.quic ? { enabled: true, retryThreshold: 0 } : { enabled: false },
      healthCheck: { enabled: false },
      logging: { accessLog: true },
      loadBalancer: { backendServers: [{ id: 'b1', host: '127.0.0.1', port: backend.port }] },
    },
    workers: opts.workers,
  });
  procs.push(lb);
  return lb;
}

/** SIGHUP, and the log line of the applied reload that makes `generation`. */
async function reload(lb: QuiclbProcess, generation: number): Promise<Record<string, unknown>> {
  lb.child.kill('SIGHUP');
  return lb.waitForLog((e) => e.msg === 'configuration reloaded' && e.generation === generation);
}

/** SIGHUP, and the log line of the refused reload that is the `failed`-th. */
async function refusedReload(lb: QuiclbProcess, failed: number): Promise<Record<string, unknown>> {
  lb.child.kill('SIGHUP');
  return lb.waitForLog((e) => typeof e.msg === 'string' && e.msg.startsWith('configuration reload refused') && e.failedReloads === failed);
}

interface TlsVisit {
  reused: boolean;
  /** The last session ticket the server sent on this connection. */
  ticket: Buffer | undefined;
  status: string;
  /** The shard that served it (its access-log line). */
  shard: number;
}

/** One TLS 1.3 connection with one request for `p`; `session` is offered for resumption. */
async function tlsVisit(lb: QuiclbProcess, p: string, session?: Buffer): Promise<TlsVisit> {
  const { reused, ticket, head } = await new Promise<{ reused: boolean; ticket: Buffer | undefined; head: string }>((resolve, reject) => {
    const socket = tls.connect({ host: '127.0.0.1', port: lb.httpsPort, servername: 'localhost', rejectUnauthorized: false, ALPNProtocols: ['http/1.1'], minVersion: 'TLSv1.3', session });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error('no answer within 5 s'));
    }, 5000);
    let got: Buffer | undefined;
    let reusedNow = false;
    let text = '';
    socket.on('session', (t: Buffer) => (got = t));
    socket.once('secureConnect', () => {
      reusedNow = socket.isSessionReused();
      socket.write(`GET ${p} HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n`);
    });
    socket.on('data', (d: Buffer) => (text += d.toString()));
    socket.once('close', () => {
      clearTimeout(timer);
      resolve({ reused: reusedNow, ticket: got, head: text.split('\r\n')[0] });
    });
    socket.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });
  const line = await lb.waitForLog((e) => e.msg === 'request' && e.path === p);
  return { reused, ticket, status: head, shard: Number(line.shard) };
}

async function stats(lb: QuiclbProcess): Promise<any> {
  return (await getJson(`http://127.0.0.1:${lb.httpPort}/stats`)).body;
}

test('a reload applies a rotated key ring to TLS session tickets on every shard: old-key tickets get a full handshake, new ones resume', { timeout: 90_000 }, async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'quiclb-reload-keyring-'));
  const keyRing = path.join(dir, 'keyring');
  const [k1, k2] = [randomBytes(32), randomBytes(32)];
  await writeRing(keyRing, [k1]);
  const lb = await start({ keyRing, quic: false, workers: 2 });

  const fresh = await tlsVisit(lb, '/fresh');
  assert.match(fresh.status, /^HTTP\/1\.1 200/);
  assert.equal(fresh.reused, false);
  assert.ok(fresh.ticket, 'got a session ticket');
  const t1 = fresh.ticket;

  // A reload that finds the ring as it was changes no key: the ticket of before still resumes, on both shards.
  const same = await reload(lb, 2);
  assert.equal(same.keysRotated, false);
  const kept = [];
  for (let i = 0; i < 4; i++) kept.push(await tlsVisit(lb, `/kept-${i}`, t1));
  assert.deepEqual(kept.map((v) => v.reused), [true, true, true, true], 'unchanged keys: resumed');
  assert.deepEqual(new Set(kept.map((v) => v.shard)), new Set([0, 1]), 'on both shards');

  // Rotation: a new key first, the old one kept below it.
  await writeRing(keyRing, [k2, k1]);
  const rotated = await reload(lb, 3);
  assert.equal(rotated.keysRotated, true);
  assert.deepEqual(rotated.needsRestart, []);
  const line = await lb.waitForLog((e) => typeof e.msg === 'string' && e.msg.startsWith('key ring rotated'));
  assert.equal(line.keys, 2);
  assert.equal(line.generation, 3);

  // node:tls holds one ticket key: a ticket of the old key is not accepted any more, whichever shard it
  // reaches; the connection pays a full handshake (still answered) and gets a ticket of the new key.
  const old = [];
  for (let i = 0; i < 4; i++) old.push(await tlsVisit(lb, `/old-ticket-${i}`, t1));
  assert.deepEqual(old.map((v) => v.reused), [false, false, false, false], 'old-key ticket: full handshake');
  for (const v of old) {
    assert.match(v.status, /^HTTP\/1\.1 200/);
    assert.ok(v.ticket && !v.ticket.equals(t1), 'a new ticket');
  }
  assert.deepEqual(new Set(old.map((v) => v.shard)), new Set([0, 1]), 'on both shards');

  // A ticket of the new key, issued by one shard, resumes on both.
  for (const issuer of [0, 1]) {
    const ticket: Buffer | undefined = old.find((v) => v.shard === issuer)!.ticket;
    const again = [];
    for (let i = 0; i < 4; i++) again.push(await tlsVisit(lb, `/new-ticket-${issuer}-${i}`, ticket));
    assert.deepEqual(again.map((v) => v.reused), [true, true, true, true], `ticket issued by shard ${issuer} after the rotation`);
    assert.deepEqual(new Set(again.map((v) => v.shard)), new Set([0, 1]), 'resumed on both shards');
  }
});

test('QUIC across key ring rotations: a Retry token of a key still in the ring opens the connection, one of a removed key is refused; tickets follow the first key; HTTP/3 keeps working', { timeout: 90_000 }, async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'quiclb-reload-keyring-'));
  const keyRing = path.join(dir, 'keyring');
  const [k1, k2, k3] = [randomBytes(32), randomBytes(32), randomBytes(32)];
  await writeRing(keyRing, [k1]);
  const lb = await start({ keyRing, quic: true, workers: 2 });
  const clients: QuicStepClient[] = [];
  const client = async (session?: Uint8Array) => {
    const c = await QuicStepClient.open(lb.httpsPort, session);
    clients.push(c);
    return c;
  };
  const h3Get = async (p: string) => {
    const c = await H3Connection.connect({ host: '127.0.0.1', port: lb.httpsPort });
    try {
      return (await c.request({ path: p, collectBody: true })).status;
    } finally {
      c.close();
    }
  };
  try {
    // Before: a handshake (through a Retry) and a QUIC session ticket that resumes.
    const first = await client();
    assert.equal(await first.handshake(), true);
    assert.ok(first.retries > 0, 'quic.retryThreshold 0: the connection began with a Retry');
    const s1 = await first.session();
    assert.ok(s1, 'got a QUIC session ticket');
    const resumed = await client(s1!);
    assert.equal(await resumed.handshake(), true);
    assert.equal(resumed.conn.isResumed(), true, 'resumed before the rotation');

    // A client that got its Retry (token of k1) holds the Initial that carries the token ...
    const held = await client();
    assert.equal(await held.run(() => held.retries > 0, 5000, { hold: true }), true, 'got a Retry');
    // ... while the ring rotates with k1 kept below the new key ...
    await writeRing(keyRing, [k2, k1]);
    assert.equal((await reload(lb, 2)).keysRotated, true);
    // ... and is let in after it.
    assert.equal(await held.handshake(), true, 'a token of the old key, still in the ring, validates');

    // Session tickets follow the first key (one ticket key per quiche Config): the old one gets a full
    // handshake, the ticket that handshake brings resumes.
    const oldTicket = await client(s1!);
    assert.equal(await oldTicket.handshake(), true);
    assert.equal(oldTicket.conn.isResumed(), false, 'a ticket of the old key: full handshake');
    const s2 = await oldTicket.session();
    assert.ok(s2);
    const newTicket = await client(s2!);
    assert.equal(await newTicket.handshake(), true);
    assert.equal(newTicket.conn.isResumed(), true, 'a ticket of the new key resumes');
    assert.equal(await h3Get('/after-first-rotation'), 200);

    // A Retry minted under k2, then a rotation that drops k2 (and k1): the token is refused.
    const dropped = await client();
    assert.equal(await dropped.run(() => dropped.retries > 0, 5000, { hold: true }), true, 'got a Retry');
    const badBefore = (await stats(lb)).quic.dropped.badToken;
    await writeRing(keyRing, [k3]);
    assert.equal((await reload(lb, 3)).keysRotated, true);
    assert.equal(await dropped.handshake(2000), false, 'a token of a key that left the ring opens nothing');
    assert.ok((await stats(lb)).quic.dropped.badToken > badBefore, 'counted as a bad token');
    assert.equal(await h3Get('/after-second-rotation'), 200);
    // The connection let in after the first rotation was never touched by the second.
    assert.equal(held.conn.isClosed(), false);
  } finally {
    for (const c of clients) c.close();
  }
});

test('a reload with a key ring others may read, with garbage, or missing is refused naming tls.keyRing; the running keys stay', { timeout: 60_000 }, async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'quiclb-reload-keyring-'));
  const keyRing = path.join(dir, 'keyring');
  const [k1, k2] = [randomBytes(32), randomBytes(32)];
  await writeRing(keyRing, [k1]);
  const lb = await start({ keyRing, quic: false, workers: 1 });
  const fresh = await tlsVisit(lb, '/fresh');
  const t1 = fresh.ticket;
  assert.ok(t1);

  // Another key, but world-readable: refused, so the ticket of k1 still resumes.
  await writeRing(keyRing, [k2], 0o644);
  const open = await refusedReload(lb, 1);
  assert.equal(open.field, 'tls.keyRing');
  assert.match(String(open.error), /^tls\.keyRing: .*keyring may be read by group or others \(mode 0644\); run chmod 600 /);
  let s = await stats(lb);
  assert.equal(s.config.generation, 1);
  assert.equal(s.config.failedReloads, 1);
  assert.match(s.config.lastReloadError, /^tls\.keyRing: /);
  assert.equal((await tlsVisit(lb, '/after-open', t1)).reused, true, 'the running key stays');

  // Garbage.
  await writeRing(keyRing, [k2]);
  await writeFile(keyRing, `${await readFile(keyRing, 'utf8')}not a key!\n`);
  const garbage = await refusedReload(lb, 2);
  assert.equal(garbage.field, 'tls.keyRing');
  assert.match(String(garbage.error), /line 3 is not a base64 key$/);
  assert.equal((await tlsVisit(lb, '/after-garbage', t1)).reused, true);

  // The configuration names a key ring that does not exist: a reload never creates one.
  const config = JSON.parse(await readFile(lb.configFile, 'utf8'));
  await writeFile(lb.configFile, JSON.stringify({ ...config, tls: { ...config.tls, keyRing: path.join(dir, 'missing') } }));
  const missing = await refusedReload(lb, 3);
  assert.equal(missing.field, 'tls.keyRing');
  assert.match(String(missing.error), /missing does not exist; a reload never creates a key ring/);
  s = await stats(lb);
  assert.equal(s.config.generation, 1);
  assert.equal(s.config.failedReloads, 3);
  assert.equal((await tlsVisit(lb, '/after-missing', t1)).reused, true);

  // Fixed (another path, mode 0600, k2): applied, and k1's ticket is over.
  const other = path.join(dir, 'other-keyring');
  await writeRing(other, [k2]);
  await writeFile(lb.configFile, JSON.stringify({ ...config, tls: { ...config.tls, keyRing: other } }));
  const applied = await reload(lb, 2);
  assert.equal(applied.keysRotated, true);
  assert.ok((applied.changed as string[]).includes('tls.keyRing'), JSON.stringify(applied.changed));
  assert.deepEqual(applied.needsRestart, [], 'a changed tls.keyRing path needs no restart');
  assert.equal((await tlsVisit(lb, '/after-fix', t1)).reused, false);
});

test('stateless resets after a rotation: connections of a key still in the ring are reset with their own token (primary and restarted shard), those of a dropped key are not', { timeout: 90_000 }, async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'quiclb-reload-keyring-'));
  const keyRing = path.join(dir, 'keyring');
  const [k1, k3] = [randomBytes(32), randomBytes(32)];
  // The reset subkeys of k1 and k2 must carry different CID tags (they share one once in 256 rotations; the
  // newer key then answers for both, see src/wire/stateless-reset.ts).
  const resetTag = (k: Buffer) => keyTag(new KeyRing([k]).derive('quic stateless reset'));
  let k2: Buffer;
  do k2 = randomBytes(32);
  while (resetTag(k2) === resetTag(k1));
  await writeRing(keyRing, [k1]);
  const backend = await startIdBackend('b1');
  backends.push(backend);
  const file = {
    server: { httpPort: await freePort(), httpsPort: await freePort(), bindAddress: '127.0.0.1', shutdownTimeout: '1s' },
    tls: { stateDir: path.join(dir, 'state'), keyRing },
    quic: { idleTimeout: '20s' },
    healthCheck: { enabled: false },
    logging: { level: 'silent', accessLog: false },
    loadBalancer: { backendServers: [{ id: 'b1', host: '127.0.0.1', port: backend.port }] },
  };
  const primary = await startPrimary({
    config: validateConfig(file),
    workers: 1,
    logger: pino({ level: 'silent' }),
    loadConfig: () => validateConfig(file),
    // The killed shard stays down long enough for the primary to answer the first client itself.
    restartPolicy: { backoffMs: [1500], healthyAfterMs: 60_000 },
  });
  const clients: QuicStepClient[] = [];
  const resets = () => primary.state.globalCounter(G_QUIC_STATELESS_RESETS);
  /** Sends a request's worth of stream data and runs until the connection closed or `ms` passed. */
  const sendAndWait = async (c: QuicStepClient, ms: number) => {
    c.conn.streamSend(0, Buffer.alloc(200, 0x61), false);
    return c.run(() => c.conn.isClosed(), ms);
  };
  try {
    const port = file.server.httpsPort;
    // Opened under k1: their CIDs carry k1's tag.
    const [a, b, c] = await Promise.all([0, 1, 2].map(() => QuicStepClient.open(port)));
    clients.push(a, b, c);
    for (const x of [a, b, c]) assert.equal(await x.handshake(), true);

    await writeRing(keyRing, [k2, k1]);
    const rotated = await primary.reload();
    assert.ok(rotated.ok && rotated.keysRotated, JSON.stringify(rotated));

    // The shard dies: the primary answers a's next packet with a reset under k1, which a recognises.
    await primary.supervisor.kill(0);
    let before = resets();
    assert.equal(await sendAndWait(a, 3000), true, 'a closed at once (idle timeout 20 s)');
    assert.ok(resets() > before, 'the primary sent a reset');

    // The shard is back (with the current keys): it resets c, a connection of its previous incarnation, under k1.
    const deadline = Date.now() + 20_000;
    while (!(primary.supervisor.alive(0) && primary.state.globalCounter(G_SHARD_RESTARTS) === 1n)) {
      assert.ok(Date.now() < deadline, 'shard 0 restarted');
      await new Promise((r) => setTimeout(r, 20));
    }
    before = resets();
    assert.equal(await sendAndWait(c, 3000), true, 'c closed at once');
    assert.ok(resets() > before, 'the restarted shard sent a reset');

    // A rotation that drops k1 (and k2): b's reset carries the newest key's token, which b does not know.
    await writeRing(keyRing, [k3]);
    const dropped = await primary.reload();
    assert.ok(dropped.ok && dropped.keysRotated);
    before = resets();
    assert.equal(await sendAndWait(b, 2000), false, 'b not closed: it would wait for its idle timeout');
    assert.ok(resets() > before, 'a reset was sent all the same');
  } finally {
    for (const x of clients) x.close();
    await primary.stop();
  }
});
