// The key ring file (src/shared/key-ring.ts) and what it seeds: one file read by two quiclb processes gives
// both the same keys, so a Retry token minted by one validates in the other (also after a rotation), and a
// QUIC session ticket issued under one quiche Config resumes under another (another shard, or after a restart).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, stat, writeFile, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { KeyRing, openKeyRing, parseKeyRing, formatKeyRing, defaultKeyRingFile } from '../../src/shared/key-ring.ts';
import { RetryTokenMinter } from '../../src/primary/udp-retry-token.ts';
import { encodeCid } from '../../src/wire/cid.ts';
import { loadQuiche, type QuicheConfig } from '../../src/quic/quiche.ts';
import { buildQuicheConfig } from '../../src/quic/quiche-config.ts';
import { ensureSelfSigned } from '../../src/shared/tls-material.ts';
import { quicTestConfig } from '../support/quic-harness.ts';
import { loadPrimaryKeys, reloadPrimaryKeys, sameKeys, shardKeys } from '../../src/primary/keys.ts';
import { validateConfig } from '../../src/config/load.ts';
import pino from 'pino';

async function tmp(): Promise<string> {
  return mkdtemp(path.join(tmpdir(), 'quiclb-keyring-unit-'));
}

test('openKeyRing creates the file once (mode 0600) and every later open reads the same keys', async () => {
  const dir = await tmp();
  try {
    const file = defaultKeyRingFile(path.join(dir, 'state'));
    const a = openKeyRing(file);
    assert.equal(a.created, true);
    assert.equal((await stat(file)).mode & 0o777, 0o600);
    assert.equal((await stat(path.dirname(file))).mode & 0o777, 0o700);
    const b = openKeyRing(file);
    assert.equal(b.created, false);
    for (const purpose of ['quic retry token', 'quic stateless reset', 'tls session tickets', 'quic session tickets'] as const) {
      assert.deepEqual(b.ring.derive(purpose), a.ring.derive(purpose), purpose);
    }
    assert.equal(a.ring.derive('tls session tickets').length, 48);
    assert.equal(a.ring.derive('quic session tickets').length, 48);
    assert.equal(a.ring.derive('quic stateless reset').length, 32);
    // Each purpose its own subkey.
    assert.notDeepEqual(a.ring.derive('quic retry token'), a.ring.derive('quic stateless reset'));
    assert.notDeepEqual(openKeyRing(path.join(dir, 'other')).ring.derive('quic retry token'), a.ring.derive('quic retry token'));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('format: comments and blank lines skipped, newest key first; bad lines named', () => {
  const k1 = randomBytes(32);
  const k2 = randomBytes(48);
  const ring = parseKeyRing(`# comment\n\n${k1.toString('base64')}\n  ${k2.toString('base64')}  \n`);
  assert.deepEqual(ring.keys, [k1, k2]);
  assert.deepEqual(parseKeyRing(formatKeyRing(ring)).keys, ring.keys);
  assert.throws(() => parseKeyRing('# nothing\n'), /holds no key/);
  assert.throws(() => parseKeyRing(`${k1.toString('base64')}\nnot base64!\n`), /line 2 is not a base64 key/);
  assert.throws(() => parseKeyRing(`${randomBytes(31).toString('base64')}\n`), /line 1 holds a key of 31 octets/);
});

test('a group-readable key ring is refused', async () => {
  const dir = await tmp();
  try {
    const file = path.join(dir, 'keyring');
    await writeFile(file, formatKeyRing(KeyRing.generate()), { mode: 0o640 });
    assert.throws(() => openKeyRing(file), (err: Error & { code?: string }) => err.code === 'QUICLB_KEY_RING' && /mode 0640\); run chmod 600/.test(err.message));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('a Retry token minted by one process validates in another that opened the same key ring, also after a rotation', async () => {
  const dir = await tmp();
  try {
    const file = path.join(dir, 'keyring');
    const minterA = new RetryTokenMinter({ keys: openKeyRing(file).ring.deriveAll('quic retry token') });
    const minterB = new RetryTokenMinter({ keys: openKeyRing(file).ring.deriveAll('quic retry token') });
    const odcid = randomBytes(8);
    const rscid = encodeCid(1);
    const token = minterA.mint('192.0.2.9', odcid, rscid);
    const check = minterB.validate(token, '192.0.2.9', rscid);
    assert.equal(check.ok, true);
    assert.ok(check.ok && check.odcid.equals(odcid));
    // Another key ring: refused.
    const stranger = new RetryTokenMinter({ keys: openKeyRing(path.join(dir, 'other')).ring.deriveAll('quic retry token') });
    assert.deepEqual(stranger.validate(token, '192.0.2.9', rscid), { ok: false, reason: 'bad_mac' });
    // Rotation: a new key goes first, the old one stays below it. Old tokens still validate; new ones use the new key.
    const old = await readFile(file, 'utf8');
    const fresh = KeyRing.generate().keys[0].toString('base64');
    await writeFile(file, `${fresh}\n${old}`, { mode: 0o600 });
    const rotated = new RetryTokenMinter({ keys: openKeyRing(file).ring.deriveAll('quic retry token') });
    assert.equal(rotated.validate(token, '192.0.2.9', rscid).ok, true, 'token of the old key');
    const newToken = rotated.mint('192.0.2.9', odcid, rscid);
    assert.deepEqual(minterA.validate(newToken, '192.0.2.9', rscid), { ok: false, reason: 'bad_mac' }, 'minted under the new key');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

/** Handshake of a quiche client (with an optional session to resume) against a server Config; returns both ends. */
function quicHandshake(server: QuicheConfig, session?: Uint8Array) {
  const q = loadQuiche();
  const cc = new q.Config();
  cc.verifyPeer(false);
  cc.setApplicationProtos(['h3']);
  cc.setMaxIdleTimeout(10_000);
  const ca = { host: '127.0.0.1', port: 40000 };
  const sa = { host: '127.0.0.1', port: 443 };
  const client = q.Connection.connect('localhost', randomBytes(16), ca, sa, cc);
  if (session) client.setSession(session);
  const srv = q.Connection.accept(encodeCid(0), null, sa, ca, server);
  const buf = Buffer.alloc(1500);
  for (let round = 0; round < 20; round++) {
    for (const [from, to, info] of [[client, srv, { from: ca, to: sa }], [srv, client, { from: sa, to: ca }]] as const) {
      let r;
      while ((r = from.send(buf)) !== null) to.recv(Buffer.from(buf.subarray(0, r[0])), info);
    }
  }
  assert.ok(client.isEstablished() && srv.isEstablished());
  return {
    resumed: srv.isResumed(),
    session: client.session(),
  };
}

test('quiche session tickets: issued under one Config, resumed under another with the same key-ring key only', async () => {
  const dir = await tmp();
  try {
    const { certFile, keyFile } = await ensureSelfSigned(dir);
    const config = quicTestConfig(dir);
    const key = KeyRing.generate().derive('quic session tickets');
    const first = quicHandshake(buildQuicheConfig(config, certFile, keyFile, key));
    assert.equal(first.resumed, false);
    assert.ok(first.session && first.session.length > 0, 'the client got a ticket');
    // Another shard, or the same one after a restart: a fresh Config with the same key.
    assert.equal(quicHandshake(buildQuicheConfig(config, certFile, keyFile, key), first.session!).resumed, true);
    // Without the shared key (quiche's own random one, as before the key ring): a full handshake.
    assert.equal(quicHandshake(buildQuicheConfig(config, certFile, keyFile), first.session!).resumed, false);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('a reload reads the key ring again: a copy holds the same keys, a rotation puts the new key first, a missing file is refused', async () => {
  const dir = await tmp();
  try {
    const file = path.join(dir, 'keyring');
    const config = (keyRing: string) => validateConfig({ tls: { stateDir: path.join(dir, 'state'), keyRing }, loadBalancer: { backendServers: [{ id: 'a', host: '127.0.0.1', port: 9 }] } });
    const started = loadPrimaryKeys(config(file), pino({ level: 'silent' }));
    assert.equal(started.count, 1);
    const again = reloadPrimaryKeys(config(file));
    assert.equal(sameKeys(started, again), true, 'unchanged file: the same keys');
    const copy = path.join(dir, 'copy');
    await writeFile(copy, await readFile(file, 'utf8'), { mode: 0o600 });
    assert.equal(sameKeys(started, reloadPrimaryKeys(config(copy))), true, 'another path with the same ring: the same keys');

    const fresh = KeyRing.generate().keys[0].toString('base64');
    await writeFile(file, `${fresh}\n${await readFile(file, 'utf8')}`, { mode: 0o600 });
    const rotated = reloadPrimaryKeys(config(file));
    assert.equal(sameKeys(started, rotated), false);
    assert.equal(rotated.count, 2);
    // Newest first, the old key's subkeys below: Retry tokens and reset tokens of the old key stay checkable.
    assert.deepEqual(rotated.retryKeys[1], started.retryKeys[0]);
    assert.deepEqual(rotated.resetKeys[1], started.resetKeys[0]);
    assert.notDeepEqual(rotated.tlsTicketKeys, started.tlsTicketKeys, 'tickets follow the first key');
    assert.notDeepEqual(rotated.quicTicketKey, started.quicTicketKey);
    assert.deepEqual(Object.keys(shardKeys(rotated)).sort(), ['quicTicketKey', 'resetKeys', 'tlsTicketKeys'], 'no Retry keys for the shards');

    const missing = path.join(dir, 'missing');
    assert.throws(
      () => reloadPrimaryKeys(config(missing)),
      (err: Error & { code?: string; path?: string }) => err.code === 'QUICLB_CONFIG' && err.path === 'tls.keyRing' && /missing does not exist; a reload never creates a key ring/.test(err.message),
    );
    await assert.rejects(stat(missing), { code: 'ENOENT' }, 'not created');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
