// The QPACK decoder (src/http3/qpack/decoder.ts) alone, against the independent model encoder: encoder-stream
// bytes cut at random points, field sections decoded before, between and after them (so they block and are
// released by later inserts). Valid input must decode to exactly the fields the model encoded, each blocked
// section released once, and the decoder stream must acknowledge each section with dynamic references once
// and never count more inserts than were made. Mutated input may only raise H3Error.
import { H3Error } from '../../../src/http3/errors.ts';
import { QpackDecoder } from '../../../src/http3/qpack/decoder.ts';
import { mutate } from '../mutate.ts';
import type { Rand } from '../random.ts';
import { TableModel, encodeSection, encoderInstructions, readPrefixed, type Field } from './qpack-model.ts';

const MAX_CAPACITY = 4096;

export interface QpackCase {
  encoder: Buffer;
  /** Cut points of the encoder stream. */
  cuts: number[];
  /** Sections in decode order, each with the encoder-stream piece index it is decoded after (-1 = before any). */
  sections: Array<{ streamId: number; bytes: Buffer; after: number; expected: Field[] | null; ric: number }>;
  inserts: number;
  valid: boolean;
  label: string;
}

const NAMES = [':path', ':authority', 'cookie', 'user-agent', 'x-a', 'x-b', 'accept', 'content-type', 'referer', 'set-cookie'];

function fieldList(r: Rand): Field[] {
  return Array.from({ length: r.size(15) }, (): Field => [r.pick(NAMES), r.weighted<string>([[5, `v${r.int(6)}`], [1, 'x'.repeat(r.size(300))], [1, ''], [1, '\u00e9\u00ff\u0001']])]);
}

export function generateQpackCase(r: Rand): QpackCase {
  const t = new TableModel(MAX_CAPACITY);
  const lists = Array.from({ length: 1 + r.int(5) }, () => fieldList(r));
  const pool = lists.flat().slice(0, t.maxEntries - 1);
  let encoder: Buffer = Buffer.from(encoderInstructions(r, t, pool));
  const sections: QpackCase['sections'] = lists.map((fields, i) => {
    const enc = encodeSection(r, t, fields);
    return { streamId: 4 * i, bytes: enc.bytes, after: 0, expected: fields, ric: enc.ric };
  });
  const cuts: number[] = [];
  for (let p = 0; p < encoder.length; ) {
    p += 1 + r.int(Math.max(1, encoder.length - p));
    cuts.push(Math.min(p, encoder.length));
  }
  for (const s of sections) s.after = r.int(cuts.length + 1) - 1;
  let valid = true;
  let label = 'valid';
  if (r.chance(0.5)) {
    valid = false;
    const what = r.pick(['encoder', 'section', 'both']);
    label = `mutated ${what}`;
    if (what !== 'section') encoder = mutate(r, encoder, [Buffer.of(0x3f, 0xe1), Buffer.of(0xff, 0xff, 0xff, 0xff, 0x0f), Buffer.of(0x00), Buffer.of(0x80)]);
    if (what !== 'encoder' && sections.length > 0) {
      const s = r.pick(sections);
      s.bytes = mutate(r, s.bytes, [Buffer.of(0xff, 0xff, 0x7f), Buffer.of(0x81), Buffer.of(0x10), Buffer.of(0x00)]);
    }
    for (const s of sections) s.expected = null;
    for (let i = 0; i < cuts.length; i++) cuts[i] = Math.min(cuts[i], encoder.length);
    cuts.push(encoder.length);
  }
  return { encoder, cuts, sections, inserts: valid ? t.insertCount : Infinity, valid, label };
}


/** Runs one case; returns the outcome key and the oracle violations. */
export function runQpackCase(c: QpackCase): { key: string; violations: string[] } {
  const violations: string[] = [];
  const decoder = new QpackDecoder({ maxTableCapacity: MAX_CAPACITY, maxBlockedStreams: 16, maxFieldSectionSize: 1 << 20 });
  const decoded = new Map<number, Field[]>();
  const out: number[] = [];
  let key = 'ok';
  const take = () => {
    const b = decoder.takeDecoderStreamBytes();
    if (b) out.push(...b);
  };
  const deliver = (streamId: number, fields: Field[] | null) => {
    if (fields === null) return;
    if (decoded.has(streamId)) violations.push(`stream ${streamId} decoded twice`);
    decoded.set(streamId, fields);
  };
  try {
    let prev = 0;
    const pieces = c.cuts.map((cut) => {
      const p = c.encoder.subarray(prev, cut);
      prev = cut;
      return p;
    });
    for (const s of c.sections.filter((x) => x.after === -1)) deliver(s.streamId, decoder.decodeFieldSection(s.streamId, s.bytes));
    take();
    for (let i = 0; i < pieces.length; i++) {
      for (const u of decoder.feedEncoderStream(pieces[i])) {
        if (u.error) throw u.error;
        deliver(u.streamId, u.headers);
      }
      take();
      for (const s of c.sections.filter((x) => x.after === i)) deliver(s.streamId, decoder.decodeFieldSection(s.streamId, s.bytes));
      take();
    }
  } catch (err) {
    if (!(err instanceof H3Error)) violations.push(`threw ${(err as Error)?.stack ?? String(err)}`);
    else key = err.codeName;
  }
  let increments = 0;
  const acks = new Map<number, number>();
  for (let p = 0; p < out.length; ) {
    const b = out[p];
    const r = readPrefixed(Uint8Array.from(out), p, b & 0x80 ? 7 : 6);
    if (r === null) {
      violations.push('truncated decoder-stream instruction');
      break;
    }
    p = r[1];
    if (b & 0x80) acks.set(r[0], (acks.get(r[0]) ?? 0) + 1);
    else if ((b & 0x40) === 0) {
      if (r[0] === 0) violations.push('Insert Count Increment of 0');
      increments += r[0];
    }
  }
  if (increments > c.inserts) violations.push(`Insert Count Increments total ${increments}, ${c.inserts} inserts made`);
  for (const [id, n] of acks) if (n > 1) violations.push(`stream ${id} acknowledged ${n} times`);
  if (c.valid) {
    if (key !== 'ok') violations.push(`valid case failed with ${key}`);
    for (const s of c.sections) {
      const got = decoded.get(s.streamId);
      if (got === undefined) violations.push(`stream ${s.streamId} never decoded (ric ${s.ric})`);
      else if (JSON.stringify(got) !== JSON.stringify(s.expected)) violations.push(`stream ${s.streamId}: ${JSON.stringify(got).slice(0, 200)} != ${JSON.stringify(s.expected).slice(0, 200)}`);
      if ((acks.get(s.streamId) ?? 0) !== (s.ric > 0 ? 1 : 0)) violations.push(`stream ${s.streamId}: ${acks.get(s.streamId) ?? 0} acknowledgments for ric ${s.ric}`);
    }
    if (decoder.blockedStreamCount !== 0) violations.push(`${decoder.blockedStreamCount} sections still blocked`);
  }
  return { key, violations };
}
