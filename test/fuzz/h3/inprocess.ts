// Runs an HTTP/3 script through the sans-IO server connection (src/http3/connection.ts) in this process and
// judges it. Always: receive()/streamReset() never throw; events keep their order per stream (a request
// before its data, nothing after its end or its error, nothing at all after a connection error, at most one
// connection error); DATA never delivers more bytes than were sent; the decoder-stream output is well formed
// (Insert Count Increments never exceed the inserts the client made, no increment of 0, each section
// acknowledged once). For valid scripts also: every request arrives with exactly the fields, body length and
// trailers the script encoded, and no error is raised but the expected refusals of reserved stream types.
import { H3ServerConnection } from '../../../src/http3/connection.ts';
import { h3ErrorName } from '../../../src/http3/errors.ts';
import type { H3Script } from './script.ts';
import { readPrefixed } from './qpack-model.ts';

export interface InProcessOutcome {
  /** 'ok', or the connection error / first stream error name. */
  key: string;
  /** Oracle violations (empty = passed). */
  violations: string[];
}


export function runInProcess(script: H3Script): InProcessOutcome {
  const violations: string[] = [];
  const state = new Map<number, 'open' | 'request' | 'ended' | 'error'>();
  const requests = new Map<number, { fields: Array<[string, string]>; body: number; trailers: Array<[string, string]> | undefined }>();
  const streamErrors: Array<[number, number]> = [];
  let connError: number | undefined;
  let sent = 0;
  let delivered = 0;
  const after = (what: string) => {
    if (connError !== undefined) violations.push(`${what} after connection error ${h3ErrorName(connError)}`);
  };
  const conn = new H3ServerConnection({
    onRequest: (req) => {
      after('onRequest');
      const s = state.get(req.streamId);
      if (s !== undefined && s !== 'open') violations.push(`onRequest on stream ${req.streamId} in state ${s}`);
      state.set(req.streamId, 'request');
      requests.set(req.streamId, { fields: req.headers.map(([n, v]) => [n, v]), body: 0, trailers: undefined });
    },
    onData: (id, chunk) => {
      after('onData');
      if (state.get(id) !== 'request') violations.push(`onData on stream ${id} in state ${state.get(id) ?? 'none'}`);
      delivered += chunk.length;
      const q = requests.get(id);
      if (q) q.body += chunk.length;
    },
    onEnd: (id, trailers) => {
      after('onEnd');
      if (state.get(id) !== 'request') violations.push(`onEnd on stream ${id} in state ${state.get(id) ?? 'none'}`);
      state.set(id, 'ended');
      const q = requests.get(id);
      if (q) q.trailers = trailers?.map(([n, v]) => [n, v]);
    },
    onStreamError: (id, code) => {
      after('onStreamError');
      if (!h3ErrorName(code).startsWith('H3_') && !h3ErrorName(code).startsWith('QPACK_')) violations.push(`stream error with unknown code 0x${code.toString(16)}`);
      const s = state.get(id);
      if (s === 'ended' || s === 'error') violations.push(`onStreamError on stream ${id} in state ${s}`);
      state.set(id, 'error');
      streamErrors.push([id, code]);
    },
    onConnectionError: (code) => {
      if (connError !== undefined) violations.push('second connection error');
      if (!h3ErrorName(code).startsWith('H3_') && !h3ErrorName(code).startsWith('QPACK_')) violations.push(`connection error with unknown code 0x${code.toString(16)}`);
      connError = code;
    },
  });
  const decoderOut: Buffer[] = [];
  const take = () => {
    for (const o of conn.takeOutgoing()) if (o.streamId === 11) decoderOut.push(Buffer.from(o.data));
  };
  try {
    for (const d of script.deliveries) {
      if (d.streamId % 4 === 0) sent += d.data.length;
      conn.receive(d.streamId, d.data, d.fin);
      take();
    }
    for (const [id, code] of script.resets) {
      conn.streamReset(id, code);
      take();
    }
  } catch (err) {
    violations.push(`threw ${(err as Error)?.stack ?? String(err)}`);
  }
  if (delivered > sent) violations.push(`delivered ${delivered} body bytes of ${sent} sent`);
  // Decoder stream (RFC 9204 §4.4): type byte 0x03, then Section Acknowledgment / Stream Cancellation / Insert Count Increment.
  const dec = Buffer.concat(decoderOut);
  if (dec.length > 0 && dec[0] !== 0x03) violations.push(`decoder stream starts with 0x${dec[0].toString(16)}`);
  let increments = 0;
  const acked = new Map<number, number>();
  for (let p = 1; p < dec.length; ) {
    const b = dec[p];
    const r = readPrefixed(dec, p, b & 0x80 ? 7 : 6);
    if (r === null) {
      violations.push('truncated decoder-stream instruction');
      break;
    }
    p = r[1];
    if (b & 0x80) {
      // A stream carries at most two sections (headers, trailers), each acknowledged once.
      acked.set(r[0], (acked.get(r[0]) ?? 0) + 1);
      if ((acked.get(r[0]) as number) > 2) violations.push(`stream ${r[0]} acknowledged more than twice`);
    } else if ((b & 0x40) === 0) {
      if (r[0] === 0) violations.push('Insert Count Increment of 0');
      increments += r[0];
    }
  }
  if (increments > script.inserts) violations.push(`Insert Count Increments total ${increments}, more than the ${script.inserts} inserts made`);
  if (script.expected !== null) {
    if (connError !== undefined) violations.push(`valid script: connection error ${h3ErrorName(connError)}`);
    const unexpected = streamErrors.filter(([id]) => !script.refusedUni.includes(id));
    if (unexpected.length > 0) violations.push(`valid script: stream errors ${unexpected.map(([id, c]) => `${id}:${h3ErrorName(c)}`).join(', ')}`);
    for (const e of script.expected) {
      const owed = script.acks?.get(e.streamId) ?? 0;
      if ((acked.get(e.streamId) ?? 0) !== owed) violations.push(`stream ${e.streamId}: ${acked.get(e.streamId) ?? 0} Section Acknowledgments, ${owed} owed (RFC 9204 §4.4.1)`);
      const got = requests.get(e.streamId);
      if (got === undefined) {
        violations.push(`valid script: request on stream ${e.streamId} never delivered`);
        continue;
      }
      if (JSON.stringify(got.fields) !== JSON.stringify(e.fields)) violations.push(`stream ${e.streamId}: fields ${JSON.stringify(got.fields).slice(0, 300)} != ${JSON.stringify(e.fields).slice(0, 300)}`);
      if (got.body !== e.body) violations.push(`stream ${e.streamId}: body ${got.body} != ${e.body}`);
      if (state.get(e.streamId) !== 'ended') violations.push(`stream ${e.streamId}: not ended (${state.get(e.streamId)})`);
      if (JSON.stringify(got.trailers) !== JSON.stringify(e.trailers)) violations.push(`stream ${e.streamId}: trailers ${JSON.stringify(got.trailers)} != ${JSON.stringify(e.trailers)}`);
    }
  }
  const key = connError !== undefined ? `conn:${h3ErrorName(connError)}` : streamErrors.length > 0 ? `stream:${h3ErrorName(streamErrors[0][1])}` : 'ok';
  return { key, violations };
}
