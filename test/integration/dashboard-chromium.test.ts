// The live dashboard in headless Chromium (driven over the DevTools protocol) against a real quiclb and
// real PHP backends: log in with the admin token, let it poll for 3 s under traffic, then check the DOM
// (every backend, the protocol chart, sparklines), that nothing overflows at 1280x800 or at a phone's
// width, screenshots, and that the Drain and Enable buttons change the backend's state in /stats.
//
// Screenshots go to a temp dir (its path is printed); with QUICLB_DASHBOARD_SCREENSHOT=FILE the
// 1280x800 one is also written to FILE after 60 s more of traffic (docs/dashboard.png was made so).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Agent, request } from 'undici';
import { startPhpBackends, type PhpBackendSet } from '../support/php-backends.ts';
import { startQuiclb, type QuiclbProcess } from '../support/quiclb-process.ts';
import { ChromiumPage } from '../support/chromium-cdp.ts';
import { rng } from '../support/seeded-random.ts';

const TOKEN = 'dashboard-test-token';
let php: PhpBackendSet;
let lb: QuiclbProcess;
let page: ChromiumPage | undefined;
let stopTraffic = () => {};

before(async () => {
  php = await startPhpBackends(3);
  lb = await startQuiclb({
    config: {
      loadBalancer: { strategy: 'weighted', backendServers: php.backends.map((b, i) => ({ id: b.id, host: b.host, port: b.port, weight: i + 1 })) },
      admin: { token: TOKEN },
      logging: { accessLog: false },
      // Chromium, php-fpm, nginx and quiclb share two cores here: a check taking over 250 ms must not
      // mark a backend down in the middle of the drain assertions.
      healthCheck: { interval: '1s', timeout: '1s', unhealthyThreshold: 3 },
    },
  });
});

after(async () => {
  stopTraffic();
  await page?.close();
  await lb?.stop();
  await php?.stop();
});

/** A few requests a second over HTTP/1.1 and HTTP/2: fast pages, slower ones, now and then a 500. */
function startTraffic(): () => void {
  const h2 = new Agent({ connect: { rejectUnauthorized: false }, allowH2: true });
  const r = rng(7);
  let running = true;
  const loop = async (base: string, dispatcher?: Agent) => {
    while (running) {
      const x = r();
      const p = x < 0.05 ? '/status.php?code=500' : x < 0.35 ? `/slow.php?ms=${5 + Math.floor(r() * 60)}` : '/index.php';
      try {
        const res = await request(base + p, { dispatcher });
        await res.body.dump();
      } catch {
        // a refused request is fine here; the dashboard shows it
      }
      await new Promise((res) => setTimeout(res, 60));
    }
  };
  void loop(`http://127.0.0.1:${lb.httpPort}`);
  void loop(`https://127.0.0.1:${lb.httpsPort}`, h2);
  return () => {
    running = false;
    void h2.close();
  };
}

async function stats(): Promise<{ backends: Array<{ id: string; enabled: boolean; healthy: boolean }> }> {
  const res = await request(`http://127.0.0.1:${lb.httpPort}/stats`, { headers: { authorization: `Bearer ${TOKEN}` } });
  return (await res.body.json()) as { backends: Array<{ id: string; enabled: boolean; healthy: boolean }> };
}

async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

test('Chromium logs in, sees every backend and the charts after 3 s, fits 1280x800 and a phone, and drains a backend', { timeout: 180_000 }, async () => {
  stopTraffic = startTraffic();
  page = await ChromiumPage.launch();
  await page.setViewport(1280, 800);
  const origin = `http://127.0.0.1:${lb.httpPort}`;

  await page.goto(`${origin}/dashboard`);
  assert.equal(await page.evaluate('!!document.querySelector("form[action=\\"/dashboard/login\\"] input[name=token]")'), true, 'the login form');
  await page.evaluate(`document.getElementById("token").value = ${JSON.stringify(TOKEN)}`);
  const loaded = page.waitForEvent('Page.loadEventFired');
  await page.evaluate('document.querySelector("form").submit()');
  await loaded;
  assert.equal(await page.evaluate('location.pathname'), '/dashboard', await page.evaluate<string>('document.body.innerText'));
  assert.equal(await page.evaluate('document.cookie'), '', 'the session cookie is HttpOnly: scripts cannot read it');

  await new Promise((r) => setTimeout(r, 3000));
  const dom = await page.evaluate<{ text: string; rows: string[]; chartLines: number; sparks: number; status: string }>(`({
    text: document.body.innerText,
    rows: [...document.querySelectorAll('#backends tr[data-backend]')].map((r) => r.dataset.backend),
    chartLines: document.querySelectorAll('#proto-chart svg.chart polyline').length,
    sparks: document.querySelectorAll('svg.spark').length,
    status: document.getElementById('status').textContent,
  })`);
  for (const b of php.backends) assert.ok(dom.text.includes(b.id), `the page shows ${b.id}`);
  assert.deepEqual(dom.rows, php.backends.map((b) => b.id));
  assert.ok(dom.chartLines >= 1, 'the protocol chart has drawn a series');
  assert.ok(dom.sparks >= php.backends.length * 3, `sparklines: ${dom.sparks}`);
  assert.match(dom.text, /req\/s/);
  assert.match(dom.text, /−5 min|now/);
  assert.equal(dom.status, '', 'no polling error');
  assert.deepEqual(page.console.filter((l) => /error|exception/i.test(l)), [], 'no script errors');

  const dir = await mkdtemp(path.join(tmpdir(), 'quiclb-dashboard-'));
  const desktop = path.join(dir, 'dashboard-1280x800.png');
  await writeFile(desktop, await page.screenshot());
  // clientWidth is the viewport's width; on a mobile viewport innerWidth grows with content that overflows.
  assert.equal(await page.evaluate('document.documentElement.scrollWidth <= document.documentElement.clientWidth'), true, 'no horizontal scrolling at 1280x800');

  await page.setViewport(390, 844, true, 2);
  await new Promise((r) => setTimeout(r, 1200));
  const phone = path.join(dir, 'dashboard-phone-390.png');
  await writeFile(phone, await page.screenshot());
  const widths = await page.evaluate<{ doc: number; win: number }>('({ doc: document.documentElement.scrollWidth, win: document.documentElement.clientWidth })');
  assert.equal(widths.win, 390);
  assert.ok(widths.doc <= widths.win, `no horizontal scrolling at a phone's width (${widths.doc} > ${widths.win})`);
  console.log(`dashboard screenshots: ${desktop} ${phone}`);
  await page.setViewport(1280, 800);

  // Drain the first backend with its button: /stats shows it at once, and the button turns into Enable.
  const id = php.backends[0].id;
  assert.equal((await stats()).backends[0].enabled, true);
  await page.evaluate(`document.querySelector('button.drain[data-backend=${JSON.stringify(id)}]').click()`);
  await waitFor('the drain in /stats', async () => ((await stats()).backends[0].enabled === false ? true : undefined));
  const after = await stats();
  assert.equal(after.backends[0].healthy, true, 'drained, not failed');
  assert.deepEqual(after.backends.slice(1).map((b) => b.enabled), [true, true]);
  await waitFor('the Enable button', async () => ((await page!.evaluate(`document.querySelector('button.drain[data-backend=${JSON.stringify(id)}]').textContent`)) === 'Enable' ? true : undefined));
  assert.match(await page.evaluate<string>(`document.querySelector('tr[data-backend=${JSON.stringify(id)}] .badge').textContent`), /drained/);
  await page.evaluate(`document.querySelector('button.drain[data-backend=${JSON.stringify(id)}]').click()`);
  await waitFor('the enable in /stats', async () => ((await stats()).backends[0].enabled === true ? true : undefined));

  const docsShot = process.env.QUICLB_DASHBOARD_SCREENSHOT;
  if (docsShot) {
    await new Promise((r) => setTimeout(r, 60_000));
    await writeFile(docsShot, await page.screenshot());
    console.log(`dashboard screenshot for the docs: ${docsShot}`);
  }
});
