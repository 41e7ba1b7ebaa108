// Plays one HTTP/2 fuzz case over TLS with ALPN h2 and reads quiclb's answer frame by frame: response
// statuses (HPACK-decoded), RST_STREAM and GOAWAY codes, and how the connection ended. Oracles: the TLS
// handshake picks h2; the server's bytes are well-formed frames whose header blocks decode.
import { runWire, type WireCase, type WireResult } from '../wire.ts';
import { HpackDecoder } from './hpack.ts';
import { F_END_HEADERS, T_CONTINUATION, T_GOAWAY, T_HEADERS, T_RST_STREAM, errorName, readFrames } from './frames.ts';

export interface H2Outcome {
  statuses: number[];
  resets: string[];
  goaway: string | undefined;
  end: WireResult['end'];
  ms: number;
  malformed?: string;
}

export async function runH2Case(port: number, c: WireCase): Promise<H2Outcome> {
  const res = await runWire(port, c, 'h2');
  const out: H2Outcome = { statuses: [], resets: [], goaway: undefined, end: res.end, ms: res.ms };
  if (res.end !== 'connect-failed' && res.alpn !== undefined && res.alpn !== 'h2') {
    out.malformed = `ALPN chose ${String(res.alpn)}, not h2`;
    return out;
  }
  const { frames } = readFrames(res.data);
  const hpack = new HpackDecoder();
  let block: Buffer[] | null = null;
  try {
    for (const f of frames) {
      if (f.type === T_HEADERS || (f.type === T_CONTINUATION && block !== null)) {
        let payload = f.payload;
        if (f.type === T_HEADERS) {
          // Servers send neither padding nor priority here, but strip them if present (RFC 9113 §6.2).
          let p = 0;
          let pad = 0;
          if (f.flags & 0x8) pad = payload[p++];
          if (f.flags & 0x20) p += 5;
          payload = payload.subarray(p, payload.length - pad);
          block = [];
        }
        (block as Buffer[]).push(payload);
        if (f.flags & F_END_HEADERS) {
          const fields = hpack.decode(Buffer.concat(block as Buffer[]));
          block = null;
          const status = fields.find(([n]) => n === ':status');
          if (status) out.statuses.push(Number(status[1]));
        }
      } else if (f.type === T_RST_STREAM && f.payload.length === 4) {
        out.resets.push(errorName(f.payload.readUInt32BE(0)));
      } else if (f.type === T_GOAWAY && f.payload.length >= 8) {
        out.goaway = errorName(f.payload.readUInt32BE(4));
      }
    }
  } catch (err) {
    out.malformed = `server header block did not decode: ${(err as Error).message}`;
  }
  return out;
}

export function h2OutcomeKey(o: H2Outcome): string {
  const statuses = [...new Set(o.statuses)].sort().join(',') || 'no-response';
  const resets = [...new Set(o.resets)].sort().join(',');
  return `${statuses}${resets ? ` rst:${resets}` : ''}${o.goaway ? ` goaway:${o.goaway}` : ''} ${o.end}`;
}
