// Headless Chromium loads a page from the QUIC engine (2 shards): HTTP/3 proven by Chromium's own netlog
// (a QUIC session to our port whose HTTP/3 HEADERS carried the response), with and without Retry.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startQuicHarness, chromiumFetch, type QuicHarness } from '../support/quic-harness.ts';
import { G_QUIC_HANDSHAKES, G_QUIC_RETRIES } from '../../src/shared/state.ts';

interface NetLog {
  constants: { logEventTypes: Record<string, number> };
  events: Array<{ type: number; params?: Record<string, unknown> }>;
}

/** Events of `name` in a Chromium netlog (JSON written by --log-net-log). */
function netlogEvents(text: string, name: string): Array<Record<string, unknown>> {
  const log = JSON.parse(text) as NetLog;
  const type = log.constants.logEventTypes[name];
  return log.events.filter((e) => e.type === type).map((e) => e.params ?? {});
}

function assertServedOverH3(netlog: string, port: number): void {
  const sessions = netlogEvents(netlog, 'QUIC_SESSION').filter((p) => p.host === '127.0.0.1' && p.port === port);
  assert.ok(sessions.length >= 1, 'Chromium opened a QUIC session to quiclb');
  assert.ok(netlogEvents(netlog, 'QUIC_SESSION_CRYPTO_HANDSHAKE_COMPLETE').length >= 1, 'QUIC handshake completed');
  const h3 = netlogEvents(netlog, 'HTTP3_HEADERS_DECODED').map((p) => (p.headers as string[]).join('\n'));
  assert.ok(h3.some((hs) => hs.includes(':status: 200') && hs.includes('x-shard:')), `HTTP/3 response headers: ${h3}`);
}

for (const retryThreshold of [1000, 0]) {
  const label = retryThreshold === 0 ? 'with a Retry before every handshake' : 'without Retry';
  describe(label, () => {
    let h: QuicHarness;
    before(async () => {
      h = await startQuicHarness({ shards: 2, configure: (c) => (c.quic.retryThreshold = retryThreshold) });
    });
    after(async () => {
      await h?.close();
    });

    test(`Chromium loads a page over HTTP/3 ${label}`, { timeout: 40_000 }, async () => {
      const handshakes = h.state.globalCounter(G_QUIC_HANDSHAKES);
      const retries = h.state.globalCounter(G_QUIC_RETRIES);
      const { result, dom, netlog } = await chromiumFetch(h.port, h.spki, '/moodle/index.php');
      assert.equal(result.timedOut, false, 'Chromium finished in time');
      assert.match(dom, /path=\/moodle\/index\.php shard=\d proto=HTTP\/3/);
      assertServedOverH3(netlog, h.port);
      assert.ok(h.state.globalCounter(G_QUIC_HANDSHAKES) > handshakes);
      if (retryThreshold === 0) assert.ok(h.state.globalCounter(G_QUIC_RETRIES) > retries, 'Retry was sent');
      else assert.equal(h.state.globalCounter(G_QUIC_RETRIES), retries);
    });
  });
}
