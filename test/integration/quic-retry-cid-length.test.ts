// A handshake through a Retry must fit quiche's transport parameters: after a Retry the server's parameters
// carry the client's original connection ID (up to 20 octets, RFC 9000 §17.2) and two of ours (the Initial
// and Retry source IDs), and quiche encodes them into a fixed 128-octet buffer. With 20-octet server IDs a
// client whose first ID was 18 octets (ngtcp2, curl) or 16 (quiche) overflowed it: accept() failed, and the
// client closed with TRANSPORT_PARAMETER_ERROR. Every connection starts with a Retry here (retryThreshold 0)
// and the idle timeout is the default, whose parameter takes the most octets of the usual ones.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { startQuicHarness, gtlsclient, type QuicHarness } from '../support/quic-harness.ts';
import { patternBytes } from '../support/quic-shard-worker.ts';
import { G_QUIC_HANDSHAKES, G_QUIC_RETRIES } from '../../src/shared/state.ts';

let h: QuicHarness;
let dir: string;

before(async () => {
  h = await startQuicHarness({
    shards: 1,
    configure: (c) => {
      c.quic.retryThreshold = 0;
      c.quic.idleTimeoutMs = 30_000;
    },
  });
  dir = await mkdtemp(path.join(tmpdir(), 'quiclb-retry-'));
});

after(async () => {
  await h?.close();
  await rm(dir, { recursive: true, force: true });
});

test('gtlsclient (ngtcp2: 18-octet first connection ID) completes a handshake through a Retry and gets its response', { timeout: 40_000 }, async () => {
  const retries = h.state.globalCounter(G_QUIC_RETRIES);
  const handshakes = h.state.globalCounter(G_QUIC_HANDSHAKES);
  const r = await gtlsclient(h.port, ['/r1?bytes=2000'], [`--download=${dir}`]);
  assert.equal(r.code, 0, `gtlsclient failed: ${r.stderr.slice(-600)}`);
  assert.ok((await readFile(path.join(dir, 'r1?bytes=2000'))).equals(patternBytes(2000)), 'the body arrived whole');
  assert.ok(h.state.globalCounter(G_QUIC_RETRIES) > retries, 'the connection began with a Retry');
  assert.equal(h.state.globalCounter(G_QUIC_HANDSHAKES), handshakes + 1n, 'one handshake, completed');
});
