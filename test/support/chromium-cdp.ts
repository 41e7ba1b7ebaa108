// Headless Chromium driven through the DevTools protocol (CDP) over its websocket, with Node's own
// WebSocket client: load a page, run a script in it, take a screenshot, change the viewport. Started
// with the same flags as test/support/quic-harness.ts's chromiumFetch, in its own process group so
// close() also ends the helpers it forks.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';

export const CHROMIUM = '/usr/bin/chromium';

interface Pending {
  resolve: (v: any) => void;
  reject: (e: Error) => void;
}

export class ChromiumPage {
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private readonly listeners = new Set<(method: string, params: any) => void>();
  /** Messages Chromium printed to the page's console (errors included): a failing page script shows here. */
  readonly console: string[] = [];

  private readonly child: ChildProcess;
  private readonly ws: WebSocket;
  private readonly profile: string;

  private constructor(child: ChildProcess, ws: WebSocket, profile: string) {
    this.child = child;
    this.ws = ws;
    this.profile = profile;
    ws.addEventListener('message', (ev) => {
      const msg = JSON.parse(String(ev.data)) as { id?: number; result?: unknown; error?: { message: string }; method?: string; params?: any };
      if (msg.id !== undefined) {
        const p = this.pending.get(msg.id);
        this.pending.delete(msg.id);
        if (msg.error) p?.reject(new Error(`CDP: ${msg.error.message}`));
        else p?.resolve(msg.result);
      } else if (msg.method !== undefined) {
        if (msg.method === 'Runtime.consoleAPICalled') this.console.push(msg.params.args.map((a: { value?: unknown; description?: string }) => a.value ?? a.description).join(' '));
        if (msg.method === 'Runtime.exceptionThrown') this.console.push(`exception: ${msg.params.exceptionDetails?.exception?.description ?? msg.params.exceptionDetails?.text}`);
        for (const l of this.listeners) l(msg.method, msg.params);
      }
    });
    ws.addEventListener('close', () => {
      for (const p of this.pending.values()) p.reject(new Error('CDP websocket closed'));
      this.pending.clear();
    });
  }

  /** `extraArgs` go on Chromium's command line after the fixed flags (e.g. --ignore-certificate-errors). */
  static async launch(timeoutMs = 20_000, extraArgs: string[] = []): Promise<ChromiumPage> {
    const profile = await mkdtemp(path.join(tmpdir(), 'quiclb-cdp-'));
    const child = spawn(
      CHROMIUM,
      [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        '--disable-dev-shm-usage',
        '--hide-scrollbars',
        `--user-data-dir=${path.join(profile, 'profile')}`,
        '--remote-debugging-address=127.0.0.1',
        '--remote-debugging-port=0',
        ...extraArgs,
        'about:blank',
      ],
      { stdio: ['ignore', 'ignore', 'pipe'], detached: true },
    );
    const killGroup = () => {
      try {
        if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    };
    process.once('exit', killGroup);
    try {
      const browserWs = await new Promise<string>((resolve, reject) => {
        let err = '';
        const timer = setTimeout(() => reject(new Error(`Chromium printed no DevTools address within ${timeoutMs} ms:\n${err}`)), timeoutMs);
        child.stderr!.setEncoding('utf8');
        child.stderr!.on('data', (chunk: string) => {
          err += chunk;
          const m = /DevTools listening on (ws:\/\/\S+)/.exec(err);
          if (m) {
            clearTimeout(timer);
            resolve(m[1]);
          }
        });
        child.once('exit', (code) => {
          clearTimeout(timer);
          reject(new Error(`Chromium exited (${code}) before listening:\n${err}`));
        });
      });
      const { port } = new URL(browserWs);
      const targets = (await (await fetch(`http://127.0.0.1:${port}/json/list`)).json()) as Array<{ type: string; webSocketDebuggerUrl: string }>;
      const page = targets.find((t) => t.type === 'page');
      if (!page) throw new Error('Chromium has no page target');
      const ws = new WebSocket(page.webSocketDebuggerUrl);
      await new Promise<void>((resolve, reject) => {
        ws.addEventListener('open', () => resolve(), { once: true });
        ws.addEventListener('error', () => reject(new Error('CDP websocket failed to open')), { once: true });
      });
      const p = new ChromiumPage(child, ws, profile);
      await p.send('Page.enable');
      await p.send('Runtime.enable');
      return p;
    } catch (err) {
      killGroup();
      await rm(profile, { recursive: true, force: true });
      throw err;
    }
  }

  send<T = any>(method: string, params: Record<string, unknown> = {}, timeoutMs = 15_000): Promise<T> {
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`CDP ${method} got no answer within ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(id, {
        resolve: (v) => {
          clearTimeout(timer);
          resolve(v as T);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      });
      this.ws.send(JSON.stringify({ id, method, params }));
    });
  }

  waitForEvent(method: string, timeoutMs = 15_000): Promise<any> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.listeners.delete(listener);
        reject(new Error(`no ${method} within ${timeoutMs} ms`));
      }, timeoutMs);
      const listener = (m: string, params: any) => {
        if (m !== method) return;
        clearTimeout(timer);
        this.listeners.delete(listener);
        resolve(params);
      };
      this.listeners.add(listener);
    });
  }

  async setViewport(width: number, height: number, mobile = false, deviceScaleFactor = 1): Promise<void> {
    await this.send('Emulation.setDeviceMetricsOverride', { width, height, deviceScaleFactor, mobile });
  }

  /** Navigates and waits for the load event. */
  async goto(url: string): Promise<void> {
    const loaded = this.waitForEvent('Page.loadEventFired');
    const r = await this.send<{ errorText?: string }>('Page.navigate', { url });
    if (r.errorText) throw new Error(`navigation to ${url} failed: ${r.errorText}`);
    await loaded;
  }

  /** Runs `expression` in the page (awaiting a promise) and returns its JSON value. */
  async evaluate<T = unknown>(expression: string): Promise<T> {
    const r = await this.send<{ result: { value?: T }; exceptionDetails?: { text: string; exception?: { description?: string } } }>('Runtime.evaluate', {
      expression,
      returnByValue: true,
      awaitPromise: true,
    });
    if (r.exceptionDetails) throw new Error(`page script failed: ${r.exceptionDetails.exception?.description ?? r.exceptionDetails.text}`);
    return r.result.value as T;
  }

  async screenshot(): Promise<Buffer> {
    const r = await this.send<{ data: string }>('Page.captureScreenshot', { format: 'png' });
    return Buffer.from(r.data, 'base64');
  }

  async close(): Promise<void> {
    try {
      this.ws.close();
    } catch {
      // closed already
    }
    try {
      if (this.child.pid !== undefined) process.kill(-this.child.pid, 'SIGKILL');
    } catch {
      // already gone
    }
    await rm(this.profile, { recursive: true, force: true });
  }
}
