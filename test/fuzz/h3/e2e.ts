// Plays an HTTP/3 script (script.ts) through quiclb over QUIC with the bench HTTP/3 client's raw-stream API:
// each delivery is written on its stream as quiche allows, some with a pause between them so that they travel
// in separate packets (header sections then really arrive before the QPACK inserts they need). Reports, per
// request stream, the response status or the reset code, and how the connection ended. Oracles: the client
// never sees a malformed response; for a valid script every request is answered by the backend (2xx/3xx)
// and the connection stays up.
import { setImmediate as tick, setTimeout as sleep } from 'node:timers/promises';
import { H3ClientError, H3Connection } from '../../../bench/lib/h3-client.ts';
import { h3ErrorName } from '../../../src/http3/errors.ts';
import type { H3Script } from './script.ts';

export interface H3E2EOutcome {
  /** Per request stream: "200", "reset:H3_MESSAGE_ERROR", "timeout", "closed". */
  streams: string[];
  /** How the connection ended ("open" if it was still up when we closed it). */
  connection: string;
  ms: number;
  malformed?: string;
  /** Valid scripts: what went wrong with a request the server should have answered. */
  unanswered?: string;
}

const RESPONSE_TIMEOUT_MS = 4000;

const codeName = (isApp: boolean, code: number): string => (isApp ? h3ErrorName(code) : `transport:0x${code.toString(16)}`);

export async function runH3Case(port: number, script: H3Script): Promise<H3E2EOutcome> {
  const started = Date.now();
  let conn: H3Connection;
  try {
    conn = await H3Connection.connect({ host: '127.0.0.1', port, connectTimeoutMs: 5000, controlStream: null });
  } catch (err) {
    return { streams: [], connection: `connect-failed:${(err as H3ClientError).code ?? (err as Error).message}`, ms: Date.now() - started };
  }
  const requestIds: number[] = [];
  try {
    for (const d of script.deliveries) {
      if (d.streamId % 4 === 0 && !requestIds.includes(d.streamId)) requestIds.push(d.streamId);
      conn.sendRaw(d.streamId, d.data, d.fin);
      // Separate packets now and then, so cross-stream order really varies on the wire.
      if (d.data.length < 2000 && (d.streamId & 3) === 2) await tick();
    }
    for (const [id, code] of script.resets) conn.shutdownStream(id, 1, code);
  } catch (err) {
    conn.close();
    return { streams: [], connection: 'client-error', ms: Date.now() - started, malformed: `client failed to send: ${(err as Error).stack}` };
  }
  const out: H3E2EOutcome = { streams: [], connection: 'open', ms: 0 };
  const results = await Promise.all(
    requestIds.map(async (id) => {
      try {
        const res = await conn.rawResponse(id, RESPONSE_TIMEOUT_MS);
        return { id, what: String(res.status) };
      } catch (err) {
        const e = err as H3ClientError;
        if (e.code === 'H3C_PROTOCOL') out.malformed = `stream ${id}: ${e.message}`;
        if (e.code === 'H3C_STREAM_RESET') return { id, what: `reset:${e.appCode !== undefined ? h3ErrorName(e.appCode) : e.message}` };
        if (e.code === 'H3C_TIMEOUT') return { id, what: 'timeout' };
        if (e.code === 'H3C_CLOSED') return { id, what: 'closed' };
        return { id, what: e.code ?? e.message };
      }
    }),
  );
  // A connection error may arrive just after the last stream outcome: give it a moment.
  if (conn.closeError === undefined) await sleep(20);
  const info = conn.closeError;
  const closed = info !== undefined || !conn.isOpen;
  out.connection = info !== undefined ? `${info.byPeer ? 'peer' : 'local'}:${codeName(info.isApp, info.errorCode)}` : conn.isOpen ? 'open' : 'closed';
  out.streams = results.map((r) => r.what);
  if (script.expected !== null) {
    const problems: string[] = [];
    for (const e of script.expected) {
      const got = results.find((r) => r.id === e.streamId)?.what ?? 'not sent';
      if (!/^[23]\d\d$/.test(got)) problems.push(`stream ${e.streamId}: ${got}`);
    }
    if (closed) problems.push(`connection ${out.connection}`);
    if (problems.length > 0) out.unanswered = problems.join('; ');
  }
  conn.close();
  out.ms = Date.now() - started;
  return out;
}

export function h3OutcomeKey(o: H3E2EOutcome): string {
  const streams = [...new Set(o.streams)].sort().join(',') || 'no-streams';
  return `${streams} conn:${o.connection}`;
}
