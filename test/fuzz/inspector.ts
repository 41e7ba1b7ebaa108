// Forced garbage collection in the quiclb process under fuzz, over the inspector protocol (quiclb is started with
// --inspect=127.0.0.1:0 by env.ts): HeapProfiler.collectGarbage in the primary and, through the NodeWorker
// domain, in every shard thread, then each isolate's heapUsed. A leak is live memory that survives a full GC,
// which RSS alone cannot tell from V8 collecting lazily (measured here: quiclb's RSS rose from 200 to 660 MiB
// in 3 minutes of HTTP/1.1 fuzzing, then fell by 100 MiB at one major GC).

export interface HeapAfterGc {
  /** heapUsed of every isolate (primary + shards) after a full GC, bytes. */
  heapUsed: number;
  perIsolate: Array<{ name: string; heapUsed: number }>;
}

/** The inspector's WebSocket URL from quiclb's stderr ("Debugger listening on ws://..."). */
export function inspectorUrl(lines: string[]): string | undefined {
  for (const l of lines) {
    const m = /Debugger listening on (ws:\/\/\S+)/.exec(l);
    if (m) return m[1];
  }
  return undefined;
}

/** Lines the inspector itself prints on stderr (not errors of quiclb). */
export const INSPECTOR_NOISE = /^(Debugger listening on |For help, see: https:\/\/nodejs\.org|Debugger attached\.|Debugger ending on |Waiting for the debugger to disconnect)/;

/** Runs `fn` with an inspector session on the primary and one per shard thread (NodeWorker domain). */
async function withSessions<T>(
  url: string,
  timeoutMs: number,
  fn: (primary: Runner, workers: Array<{ title: string; run: Runner }>) => Promise<T>,
): Promise<T> {
  const ws = new WebSocket(url);
  await new Promise<void>((resolve, reject) => {
    ws.addEventListener('open', () => resolve());
    ws.addEventListener('error', () => reject(new Error(`inspector at ${url} refused the connection`)));
  });
  let nextId = 0;
  const pending = new Map<number, (result: any) => void>();
  const workers: Array<{ sessionId: string; title: string }> = [];
  const workerPending = new Map<string, (result: any) => void>();
  ws.addEventListener('message', (ev: MessageEvent) => {
    const m = JSON.parse(String(ev.data));
    if (m.id !== undefined) pending.get(m.id)?.(m.result ?? m.error);
    else if (m.method === 'NodeWorker.attachedToWorker') workers.push({ sessionId: m.params.sessionId, title: m.params.workerInfo.title });
    else if (m.method === 'NodeWorker.receivedMessageFromWorker') {
      const w = JSON.parse(m.params.message);
      if (w.id !== undefined) workerPending.get(`${m.params.sessionId}/${w.id}`)?.(w.result ?? w.error);
    }
  });
  const call = (method: string, params: object = {}): Promise<any> =>
    new Promise((resolve) => {
      const id = ++nextId;
      pending.set(id, resolve);
      ws.send(JSON.stringify({ id, method, params }));
    });
  const callWorker = (sessionId: string, method: string, params: object = {}): Promise<any> =>
    new Promise((resolve) => {
      const id = ++nextId;
      workerPending.set(`${sessionId}/${id}`, resolve);
      void call('NodeWorker.sendMessageToWorker', { sessionId, message: JSON.stringify({ id, method, params }) });
    });
  const timer = setTimeout(() => ws.close(), timeoutMs);
  try {
    await call('NodeWorker.enable', { waitForDebuggerOnStart: false });
    // attachedToWorker events arrive right after enable.
    await new Promise((r) => setTimeout(r, 200));
    return await fn(call, workers.map((w) => ({ title: w.title, run: (m: string, p?: object) => callWorker(w.sessionId, m, p) })));
  } finally {
    clearTimeout(timer);
    ws.close();
  }
}

type Runner = (method: string, params?: object) => Promise<any>;

export async function heapAfterGc(url: string, timeoutMs = 20_000): Promise<HeapAfterGc> {
  const heapOf = async (run: Runner): Promise<number> => {
    await run('HeapProfiler.collectGarbage');
    // Twice: weak references and finalizers freed by the first pass are collected by the second.
    await run('HeapProfiler.collectGarbage');
    const r = await run('Runtime.evaluate', { expression: 'process.memoryUsage().heapUsed', returnByValue: true });
    return Number(r?.result?.value ?? NaN);
  };
  return withSessions(url, timeoutMs, async (primary, workers) => {
    const perIsolate = [{ name: 'primary', heapUsed: await heapOf(primary) }];
    for (const w of workers) perIsolate.push({ name: w.title, heapUsed: await heapOf(w.run) });
    return { heapUsed: perIsolate.reduce((n, i) => n + i.heapUsed, 0), perIsolate };
  });
}

/**
 * The sockets each shard thread still holds (its active handles), with their stream state: what a
 * connection-leak failure shows, so that the state a leaked connection is stuck in can be read off the report.
 */
const SOCKET_REPORT = `JSON.stringify(process._getActiveHandles().filter((h) => h && typeof h.remotePort !== 'undefined').map((s) => ({
  peer: s.remotePort, local: s.localPort, tls: !!s.encrypted, destroyed: s.destroyed, connecting: s.connecting,
  flowing: s.readableFlowing, readableEnded: s.readableEnded, readableLength: s.readableLength,
  writableEnded: s.writableEnded, writableFinished: s.writableFinished, writableLength: s.writableLength,
  bytesRead: s.bytesRead, bytesWritten: s.bytesWritten, listeners: s.eventNames().map((e) => String(e) + ':' + s.listenerCount(e)).join(' '),
  h1: ((c) => c && ({ queue: c.queue.map((ex) => ({ method: ex.req.method, path: ex.req.path, keepAlive: ex.keepAlive, bodyOpen: ex.bodyOpen,
    headersSent: ex.headersSent, finished: ex.finished, hasBody: ex.req.body !== null, expect: ex.expectContinue })),
    reading: c.reading && c.reading.req.path, stopParsing: c.stopParsing, lingering: c.lingering, pausedForBody: c.pausedForBody,
    pausedForQueue: c.pausedForQueue, awaitingUpgrade: c.awaitingUpgrade, pendingRefusal: c.pendingRefusal, readKind: c.readKind,
    readDeadline: c.readDeadline, writeDeadline: c.writeDeadline, closed: c.closed }))(s[Symbol.for('quiclb.h1.connection')]),
})))`;

export async function socketReport(url: string, timeoutMs = 20_000): Promise<string> {
  return withSessions(url, timeoutMs, async (_primary, workers) => {
    const out: string[] = [];
    for (const w of workers) {
      const r = await w.run('Runtime.evaluate', { expression: SOCKET_REPORT, returnByValue: true });
      out.push(`${w.title}: ${String(r?.result?.value ?? JSON.stringify(r))}`);
    }
    return out.join('\n');
  });
}
