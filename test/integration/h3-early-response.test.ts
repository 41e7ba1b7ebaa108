// HTTP/3 uploads that get their response before the body was read (a backend answering at once, a 413):
// quiclb reads and drops the rest of the body rather than stopping the stream, because each stopped stream
// can cost the connection flow-control credit for good in quiche 0.18 (src/quic/h3-frontend.ts
// stopReading). Past the discard limit it stops the stream, and a connection that has stopped enough of
// them sends GOAWAY so that clients move on to a fresh one.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { startDemoBackend, type DemoBackend } from '../../src/demo/backends.ts';
import { startQuiclb } from '../support/quiclb-process.ts';
import type { QuiclbProcess } from '../support/quiclb-process.ts';
import { gtlsclient } from '../support/quic-harness.ts';
import { H3Connection } from '../../bench/lib/h3-client.ts';

let backend: DemoBackend;
let lb: QuiclbProcess;

before(async () => {
  backend = await startDemoBackend('b1', 0);
  // A 2 MiB connection window and 1 MiB stream windows: one stopped stream is enough for a GOAWAY.
  lb = await startQuiclb({
    config: {
      loadBalancer: { backendServers: [{ id: 'b1', host: '127.0.0.1', port: backend.port }] },
      quic: { initialMaxData: '2MiB', initialMaxStreamData: '1MiB' },
      logging: { accessLog: false },
    },
    workers: 1,
  });
});

after(async () => {
  await lb?.stop();
  await backend?.close();
});

test('uploads answered before their body was read leave the connection usable', { timeout: 120_000 }, async () => {
  // The demo backend answers as soon as the request arrives. Before the discard, about one connection in
  // six stopped getting answers after 24 to 30 such uploads (its flow-control credit used up).
  const body = new Uint8Array(1024 * 1024);
  for (let k = 0; k < 6; k++) {
    const c = await H3Connection.connect({ host: '127.0.0.1', port: lb.httpsPort });
    let ok = 0;
    await Promise.all(
      [0, 1].map(async () => {
        for (let i = 0; i < 20; i++) {
          const r = await c.request({ path: `/up${k}-${i}`, method: 'POST', body, timeoutMs: 5000 });
          assert.equal(r.status, 200);
          ok++;
        }
      }),
    );
    assert.equal(ok, 40);
    assert.ok(c.isOpen, 'no GOAWAY: nothing was stopped');
    c.close();
  }
});

test('a body past the discard limit is stopped, and that connection sends GOAWAY', { timeout: 60_000 }, async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'quiclb-early-'));
  const payload = path.join(dir, 'payload.bin');
  await writeFile(payload, Buffer.alloc(16 * 1024 * 1024, 7));
  const r = await gtlsclient(lb.httpsPort, ['/big'], [`--download=${dir}`, `--data=${payload}`, '--timeout=5s'], 30_000);
  assert.equal(r.code, 0, r.stderr.slice(-2000));
  assert.match(await readFile(path.join(dir, 'big'), 'utf8'), /quiclb demo backend: b1/);
  await lb.waitForLog((l) => /HTTP\/3 GOAWAY: request streams stopped/.test(String(l.msg)), 5000);
});
