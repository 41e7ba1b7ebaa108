// Clients whose TCP connection is reset in the middle of an upload, against the HTTP/2 frontend in this
// process (so the test sees H2Frontend's own connection set). node 24 does not always tell the session that
// its transport died (a write that failed at once stays "in progress" in the TLS socket; see
// src/tcp/h2/connection.ts): a few of these connections then get no 'close' event at all, and the frontend
// must find and release them itself, and tell their requests' handlers that the client is gone.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import tls from 'node:tls';
import { setTimeout as sleep } from 'node:timers/promises';
import { startFrontend } from '../support/h2-frontend-harness.ts';
import { PREFACE, T_DATA, T_HEADERS, T_SETTINGS, F_END_HEADERS, F_END_STREAM, h2frame } from '../fuzz/h2/frames.ts';

interface Seen {
  clientGone: boolean;
  bytes: number;
  bodyEnded: boolean;
  bodyError: string | undefined;
}

/** The upload's DATA: 4 × 16000 + 6000 bytes. */
const UPLOAD = 70_000;

test('HTTP/2: connections reset in the middle of an upload are released, and their requests learn the client is gone', { timeout: 60_000 }, async () => {
  const seen: Seen[] = [];
  const h = await startFrontend((req, res) => {
    const s: Seen = { clientGone: false, bytes: 0, bodyEnded: false, bodyError: undefined };
    seen.push(s);
    res.onClientAbort(() => {
      s.clientGone = true;
    });
    // Read the upload as a forwarder would; never answer.
    req.body?.on('data', (chunk: Buffer) => {
      s.bytes += chunk.length;
    });
    req.body?.on('end', () => {
      s.bodyEnded = true;
    });
    req.body?.on('error', (err: Error & { code?: string }) => {
      s.bodyError = err.code;
    });
  });
  try {
    // :method POST, :scheme https, :path /, :authority a; then 70 KB of DATA, more than the 65535-byte
    // initial window (the fuzzer's case: seed 5 case 64), and a TCP RST 1 ms after the write.
    const block = Buffer.from([0x83, 0x87, 0x84, 0x41, 0x01, 0x61]);
    const frames: Buffer[] = [PREFACE, h2frame(T_SETTINGS, 0, 0, Buffer.alloc(0)), h2frame(T_SETTINGS, 0x1, 0, Buffer.alloc(0)), h2frame(T_HEADERS, F_END_HEADERS, 1, block)];
    for (let i = 0; i < 4; i++) frames.push(h2frame(T_DATA, 0, 1, Buffer.alloc(16000, 0x61)));
    frames.push(h2frame(T_DATA, F_END_STREAM, 1, Buffer.alloc(6000, 0x61)));
    const bytes = Buffer.concat(frames);
    for (let i = 0; i < 48; i++) {
      const tcp = net.connect(h.port, '127.0.0.1');
      tcp.on('error', () => undefined);
      await new Promise((r) => tcp.once('connect', r));
      const socket = tls.connect({ socket: tcp, rejectUnauthorized: false, ALPNProtocols: ['h2'], servername: 'localhost' });
      socket.on('error', () => undefined);
      await new Promise((r) => socket.once('secureConnect', r));
      socket.write(bytes);
      await sleep(1);
      tcp.resetAndDestroy();
    }
    for (let i = 0; i < 40 && h.frontend.sessionCount() > 0; i++) await sleep(250);
    assert.equal(h.frontend.sessionCount(), 0, 'every reset connection was released');
    assert.ok(seen.length > 0, 'some uploads were dispatched before their connection died');
    const all = JSON.stringify(seen);
    for (const s of seen) {
      assert.ok(s.clientGone, `every handler was told the client is gone: ${all}`);
      // Some uploads arrive whole before the reset; the others fail, and none is left waiting.
      if (s.bodyEnded) assert.equal(s.bytes, UPLOAD, `only a whole upload ends: ${all}`);
      else assert.equal(s.bodyError, 'QUICLB_H2_CONNECTION_CLOSED', `a cut-off upload fails: ${all}`);
    }
  } finally {
    await h.close();
  }
});
