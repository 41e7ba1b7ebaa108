// Headless Chromium (driven over the DevTools protocol) opens `new WebSocket('wss://...')` to quiclb's TLS
// port from a page quiclb served, and echoes messages of 1 B to 1 MiB, text and binary, through quiclb to a
// WebSocket backend; then a plain ws:// one on the HTTP port. Which protocol carried each handshake is read
// from quiclb's access log (Chromium may use HTTP/2 extended CONNECT, RFC 8441, on the page's connection).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startWsBackend, type WsBackend } from '../support/ws-backend.ts';
import { startQuiclb, type QuiclbProcess } from '../support/quiclb-process.ts';
import { ChromiumPage } from '../support/chromium-cdp.ts';

let be: WsBackend;
let lb: QuiclbProcess;
let page: ChromiumPage | undefined;

before(async () => {
  be = await startWsBackend();
  lb = await startQuiclb({
    config: { healthCheck: { enabled: false }, loadBalancer: { backendServers: [{ id: 'ws', host: '127.0.0.1', port: be.port }] } },
    workers: 1,
  });
});

after(async () => {
  await page?.close();
  await lb?.stop();
  await be?.close();
});

/** The page script: open, echo every size as text and as binary, close; returns what it saw. */
const ECHO_SCRIPT = (url: string) => `(async () => {
  const sizes = [1, 125, 126, 65535, 65536, 1048576];
  const ws = new WebSocket(${JSON.stringify(url)}, ['chat.v1']);
  ws.binaryType = 'arraybuffer';
  const queue = [];
  let wake = null;
  ws.onmessage = (e) => { queue.push(e.data); if (wake) { wake(); wake = null; } };
  const next = () => queue.length ? Promise.resolve(queue.shift()) : new Promise((r) => { wake = r; }).then(() => queue.shift());
  await new Promise((resolve, reject) => { ws.onopen = resolve; ws.onerror = () => reject(new Error('WebSocket failed to open')); });
  const results = [];
  for (const size of sizes) {
    const bin = new Uint8Array(size);
    for (let i = 0; i < size; i++) bin[i] = (i * 31 + size) & 255;
    ws.send(bin);
    const back = new Uint8Array(await next());
    let same = back.length === size;
    for (let i = 0; same && i < size; i++) same = back[i] === bin[i];
    const text = 'x'.repeat(size - 1) + 'y';
    ws.send(text);
    const textBack = await next();
    results.push({ size, binary: same, text: textBack === text });
  }
  const closed = new Promise((r) => { ws.onclose = (e) => r({ code: e.code, clean: e.wasClean }); });
  ws.close(1000, 'done');
  return { protocol: ws.protocol, results, close: await closed };
})()`;

test('Chromium: new WebSocket("wss://...") to the TLS port echoes 1 B to 1 MiB through quiclb and closes cleanly', { timeout: 90_000 }, async (t) => {
  page = await ChromiumPage.launch(20_000, ['--ignore-certificate-errors']);
  await page.goto(`https://127.0.0.1:${lb.httpsPort}/page`);
  const out = await page.evaluate<{ protocol: string; results: Array<{ size: number; binary: boolean; text: boolean }>; close: { code: number; clean: boolean } }>(
    ECHO_SCRIPT(`wss://127.0.0.1:${lb.httpsPort}/echo`),
  );
  assert.equal(out.protocol, 'chat.v1');
  for (const r of out.results) {
    assert.equal(r.binary, true, `binary ${r.size} B`);
    assert.equal(r.text, true, `text ${r.size} B`);
  }
  assert.deepEqual(out.close, { code: 1000, clean: true });
  // Logged once the tunnel has closed on both sides.
  const handshake = await lb.waitForLog((e) => e.msg === 'request' && e.path === '/echo', 10_000);
  assert.equal(handshake.backend, 'ws');
  t.diagnostic(`Chromium's wss:// went over ${handshake.protocol} (status ${handshake.status}, open ${handshake.durationMs} ms, logged ${Date.now() - Number(handshake.time)} ms ago)`);
  assert.equal(be.handshakes.length, 1);

  // ws:// on the plain port, from a page of that origin.
  await page.goto(`http://127.0.0.1:${lb.httpPort}/page`);
  const plain = await page.evaluate<{ results: Array<{ binary: boolean; text: boolean }>; close: { code: number } }>(ECHO_SCRIPT(`ws://127.0.0.1:${lb.httpPort}/echo`));
  assert.ok(plain.results.every((r) => r.binary && r.text));
  assert.equal(plain.close.code, 1000);
  assert.deepEqual(page.console.filter((l) => /error/i.test(l)), []);
});
