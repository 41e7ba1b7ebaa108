// Plays one HTTP/1.1 fuzz case (plain port, or TLS with ALPN http/1.1) and reads the answer: the response
// status codes in order and how the connection ended. Oracle: whatever quiclb sends is HTTP/1.1 responses.
import { runWire, type WireCase, type WireResult } from '../wire.ts';

export interface H1Outcome {
  statuses: number[];
  end: WireResult['end'];
  bytes: number;
  ms: number;
  /** Set when the response stream is not HTTP/1.1 (an oracle failure). */
  malformed?: string;
}

export async function runH1Case(port: number, c: WireCase, secure = false): Promise<H1Outcome> {
  const res = await runWire(port, c, secure ? 'http/1.1' : undefined);
  const text = res.data.toString('latin1');
  // The fuzz backend's bodies never contain "HTTP/1.", so every match is a status line.
  const statuses = [...text.matchAll(/(?:^|\n)HTTP\/1\.[01] (\d{3}) /g)].map((m) => Number(m[1]));
  const out: H1Outcome = { statuses, end: res.end, bytes: res.bytes, ms: res.ms };
  if (text.length > 0 && !/^HTTP\/1\.1 [1-5]\d\d /.test(text)) out.malformed = `response starts with ${JSON.stringify(text.slice(0, 40))}`;
  return out;
}

/** A short label for the outcome table: statuses, then how the connection ended. */
export function h1OutcomeKey(o: H1Outcome): string {
  const s = o.statuses.length === 0 ? 'no-response' : o.statuses.length > 3 ? `${o.statuses.slice(0, 3).join(',')},..(${o.statuses.length})` : o.statuses.join(',');
  return `${s} ${o.end}`;
}
