// HTTP/3 connection scripts (RFC 9114, RFC 9204) for the fuzzers: what a client sends on each of its streams —
// the control stream (type + SETTINGS + more frames), the QPACK encoder and decoder streams, reserved stream
// types, and request streams (HEADERS with a QPACK section from qpack-model.ts, DATA, trailers, unknown and
// reserved frame types) — cut into chunks and interleaved across streams as QUIC may deliver them (so header
// sections arrive before the inserts they need and block). A valid script carries what the server must make
// of it (every request's fields, body and trailers); a mutated one carries nothing and is judged by
// invariants only. Varints are encoded here, independently of src/http3/varint.ts.
import type { Rand } from '../random.ts';
import { mutate } from '../mutate.ts';
import { TableModel, encodeSection, encoderInstructions, requestFields, type Field } from './qpack-model.ts';

export interface Delivery {
  streamId: number;
  data: Buffer;
  fin: boolean;
}

export interface ExpectedRequest {
  streamId: number;
  fields: Field[];
  body: number;
  trailers: Field[] | undefined;
}

export interface H3Script {
  deliveries: Delivery[];
  /** Set for valid scripts: what the server must deliver, per request stream. */
  expected: ExpectedRequest[] | null;
  /** Uni streams of a reserved type that the server must refuse (H3_STREAM_CREATION_ERROR), valid scripts only. */
  refusedUni: number[];
  /** Dynamic-table inserts the encoder stream makes (Infinity when mutated: unknown). */
  inserts: number;
  /** Valid scripts: Section Acknowledgments the server owes per request stream (sections with dynamic references). */
  acks: Map<number, number> | null;
  /** Streams the client resets (RESET_STREAM) after its deliveries, with codes. */
  resets: Array<[number, number]>;
  label: string;
}

/** RFC 9000 §16 variable-length integer. */
export function varint(v: number): Buffer {
  if (v < 0x40) return Buffer.of(v);
  if (v < 0x4000) return Buffer.of(0x40 | (v >> 8), v & 0xff);
  if (v < 0x40000000) {
    const b = Buffer.alloc(4);
    b.writeUInt32BE(v);
    b[0] |= 0x80;
    return b;
  }
  const b = Buffer.alloc(8);
  b.writeBigUInt64BE(BigInt(v));
  b[0] |= 0xc0;
  return b;
}

export function frame(type: number, payload: Buffer): Buffer {
  return Buffer.concat([varint(type), varint(payload.length), payload]);
}

/** RFC 9114 §7.2.8 / §9: reserved ("grease") frame and stream types are 0x1f * N + 0x21. */
export const grease = (r: Rand): number => 0x1f * r.int(1000) + 0x21;

const FRAME_DATA = 0x0;
const FRAME_HEADERS = 0x1;
const FRAME_SETTINGS = 0x4;

export const SERVER_MAX_TABLE_CAPACITY = 4096;

function settingsPayload(r: Rand): Buffer {
  const list: Array<[number, number]> = [];
  if (r.chance(0.7)) list.push([0x1, r.pick([0, 4096, 65536])]); // QPACK_MAX_TABLE_CAPACITY (of our decoder: the server never inserts)
  if (r.chance(0.7)) list.push([0x6, r.pick([16384, 65536, 1 << 20])]);
  if (r.chance(0.5)) list.push([0x7, r.int(100)]);
  if (r.chance(0.3)) list.push([grease(r), r.int(1 << 20)]);
  if (r.chance(0.1)) list.push([0x33, r.int(2)]);
  if (r.chance(0.1)) list.push([0x8, r.int(2)]);
  return Buffer.concat(list.flatMap(([id, v]) => [varint(id), varint(v)]));
}

/** Cuts one stream's bytes into deliveries; the last carries FIN when `fin`. */
function chunk(r: Rand, streamId: number, data: Buffer, fin: boolean): Delivery[] {
  const out: Delivery[] = [];
  let pos = 0;
  const tiny = r.chance(0.15);
  while (pos < data.length) {
    const n = tiny ? 1 + r.int(3) : 1 + r.int(Math.max(1, data.length - pos));
    out.push({ streamId, data: data.subarray(pos, pos + n), fin: false });
    pos += n;
  }
  if (fin) {
    if (out.length > 0 && r.chance(0.7)) out[out.length - 1].fin = true;
    else out.push({ streamId, data: Buffer.alloc(0), fin: true });
  }
  return out;
}

/** Merges per-stream delivery queues in random order, keeping each stream's own order. */
function interleave(r: Rand, queues: Delivery[][]): Delivery[] {
  const qs = queues.filter((q) => q.length > 0).map((q) => [...q]);
  const out: Delivery[] = [];
  while (qs.length > 0) {
    const i = r.int(qs.length);
    out.push(qs[i].shift() as Delivery);
    if (qs[i].length === 0) qs.splice(i, 1);
  }
  return out;
}

/** A valid client script: control stream, encoder stream, 1..maxRequests requests. */
export function validScript(r: Rand, maxRequests = 6, firstRequestId = 0): H3Script {
  const t = new TableModel(SERVER_MAX_TABLE_CAPACITY);
  const requests: Array<{ id: number; fields: Field[]; body: number; trailers: Field[] | undefined }> = [];
  const n = 1 + r.int(maxRequests);
  for (let i = 0; i < n; i++) {
    const body = r.chance(0.6) ? 0 : r.size(6000);
    requests.push({ id: firstRequestId + 4 * i, fields: requestFields(r, body), body, trailers: r.chance(0.15) ? [['x-checksum', `c${r.int(9)}`]] : undefined });
  }
  const useDynamic = r.chance(0.7);
  // Inserts stay under MaxEntries so every Required Insert Count decodes whatever the decoder has seen (RFC 9204 §4.5.1.1).
  const pool = requests.flatMap((q) => [...q.fields, ...(q.trailers ?? [])]).slice(0, t.maxEntries - 1);
  const encoder = useDynamic ? Buffer.from(encoderInstructions(r, t, pool)) : Buffer.alloc(0);
  const queues: Delivery[][] = [];
  const uni = [2, 6, 10, 14];
  const control = Buffer.concat([varint(0x00), frame(FRAME_SETTINGS, settingsPayload(r)), r.chance(0.2) ? frame(grease(r), r.bytes(r.int(20))) : Buffer.alloc(0)]);
  queues.push(chunk(r, uni[0], control, false));
  if (encoder.length > 0 || r.chance(0.3)) queues.push(chunk(r, uni[1], Buffer.concat([varint(0x02), encoder]), false));
  if (r.chance(0.3)) queues.push(chunk(r, uni[2], varint(0x03), false));
  const refusedUni: number[] = [];
  if (r.chance(0.15)) {
    refusedUni.push(uni[3]);
    queues.push(chunk(r, uni[3], Buffer.concat([varint(grease(r)), r.bytes(r.int(30))]), r.chance(0.5)));
  }
  const acks = new Map<number, number>();
  const section = (id: number, fields: Field[]): Buffer => {
    const enc = encodeSection(r, t, fields, useDynamic);
    if (enc.ric > 0) acks.set(id, (acks.get(id) ?? 0) + 1);
    return frame(FRAME_HEADERS, enc.bytes);
  };
  for (const q of requests) {
    const parts: Buffer[] = [section(q.id, q.fields)];
    let left = q.body;
    while (left > 0) {
      const k = r.chance(0.5) ? left : 1 + r.int(left);
      parts.push(frame(FRAME_DATA, Buffer.alloc(k, 0x61)));
      left -= k;
      if (r.chance(0.1)) parts.push(frame(grease(r), r.bytes(r.int(10))));
    }
    if (r.chance(0.05)) parts.push(frame(FRAME_DATA, Buffer.alloc(0)));
    if (q.trailers) parts.push(section(q.id, q.trailers));
    queues.push(chunk(r, q.id, Buffer.concat(parts), true));
  }
  // The control stream first most of the time (a client must open it, but it may arrive after requests).
  const deliveries = r.chance(0.7) ? [...queues[0], ...interleave(r, queues.slice(1))] : interleave(r, queues);
  return {
    deliveries,
    expected: requests.map((q) => ({ streamId: q.id, fields: q.fields, body: q.body, trailers: q.trailers })),
    refusedUni,
    inserts: t.insertCount,
    acks,
    resets: [],
    label: `valid${useDynamic ? ' dyn' : ''} ${n}req`,
  };
}

/** Frames no client may send where they are put (RFC 9114 §7.2, §4.1), for the mutated scripts. */
function badFrame(r: Rand): Buffer {
  return r.weighted<() => Buffer>([
    [2, () => frame(FRAME_SETTINGS, settingsPayload(r))],
    [1, () => frame(0x7, varint(r.int(100)))], // GOAWAY
    [1, () => frame(0xd, varint(r.int(100)))], // MAX_PUSH_ID
    [1, () => frame(0x3, varint(r.int(100)))], // CANCEL_PUSH
    [1, () => frame(0x5, Buffer.concat([varint(0), r.bytes(4)]))], // PUSH_PROMISE
    [1, () => frame(r.pick([0x2, 0x6, 0x8, 0x9]), r.bytes(r.int(8)))], // HTTP/2-only types
    [1, () => frame(0xf0700, varint(r.pick([0, 1, 2, 3, 4])))], // PRIORITY_UPDATE
    [1, () => frame(0xf0701, varint(r.int(10)))],
    [2, () => frame(FRAME_DATA, r.bytes(r.int(20)))],
    [2, () => frame(FRAME_HEADERS, r.bytes(r.int(40)))],
    [1, () => Buffer.concat([varint(FRAME_HEADERS), varint(r.pick([70_000, 1 << 20, 2 ** 40]))])], // an enormous declared length
    [1, () => Buffer.concat([varint(grease(r)), varint(r.pick([1 << 20, 2 ** 40]))])],
    [1, () => frame(FRAME_SETTINGS, Buffer.concat([varint(0x2), varint(1)]))], // HTTP/2 setting id
    [1, () => frame(FRAME_SETTINGS, Buffer.concat([varint(0x6), varint(1), varint(0x6), varint(2)]))], // duplicate
    [1, () => frame(FRAME_SETTINGS, Buffer.of(0x40))], // truncated varint
  ])();
}

/** Request field lists a server must refuse as malformed (RFC 9114 §4.1.2, §4.2, §4.3.1). */
function badFields(r: Rand): Field[] {
  const ok: Field[] = [
    [':method', 'GET'],
    [':scheme', 'https'],
    [':authority', 'a'],
    [':path', '/'],
  ];
  return r.weighted<() => Field[]>([
    [1, () => ok.slice(1)],
    [1, () => [...ok.slice(0, 3)]],
    [1, () => [...ok, [':method', 'GET']]],
    [1, () => [...ok, ['Upper', 'x']]],
    [1, () => [...ok, ['connection', 'close']]],
    [1, () => [...ok, ['transfer-encoding', 'chunked']]],
    [1, () => [...ok, ['te', 'gzip']]],
    [1, () => [...ok, ['x', 'a\r\nb']]],
    [1, () => [...ok, ['x', 'a\0b']]],
    [1, () => [...ok, ['x', ' lead']]],
    [1, () => [['x', 'y'], ...ok]],
    [1, () => [...ok, [':status', '200']]],
    [1, () => [...ok, [':protocol', 'websocket']]],
    [1, () => [[':method', 'CONNECT'], [':authority', 'a:443']]],
    [1, () => [[':method', 'CONNECT'], [':authority', 'a:443'], [':path', '/']]],
    [1, () => [...ok, ['content-length', '5'], ['content-length', '6']]],
    [1, () => [...ok, ['content-length', '-1']]],
    [1, () => [...ok, ['content-length', '99999999999999999999']]],
    [1, () => [...ok, ['host', 'a'], ['host', 'b']]],
    [1, () => [[':method', 'G ET'], ...ok.slice(1)]],
    [1, () => [...ok.slice(0, 3), [':path', '']]],
    [1, () => [...ok.slice(0, 3), [':path', 'noslash']]],
    [1, () => [...ok, ['x-big', 'v'.repeat(r.range(15_000, 70_000))]]],
    [1, () => [...ok, ...Array.from({ length: r.range(200, 600) }, (_, i): Field => [`x-${i}`, 'v'])]],
    [1, () => []],
  ])();
}

/** Structure-aware breakage of a valid script, then byte-level mutation of some deliveries. */
export function mutatedScript(r: Rand, firstRequestId = 0): H3Script {
  const s = validScript(r, 4, firstRequestId);
  const ops: string[] = [];
  const d = s.deliveries;
  const count = 1 + r.int(3);
  const t = new TableModel(SERVER_MAX_TABLE_CAPACITY);
  for (let k = 0; k < count; k++) {
    const op = r.weighted<string>([
      [4, 'bytes'],
      [2, 'bad-frame'],
      [2, 'bad-fields'],
      [1, 'drop'],
      [1, 'dup'],
      [1, 'swap'],
      [1, 'fin'],
      [1, 'restream'],
      [1, 'encoder-junk'],
      [1, 'decoder-junk'],
      [1, 'reset'],
      [1, 'flood'],
    ]);
    ops.push(op);
    const i = r.int(d.length);
    switch (op) {
      case 'bytes':
        if (d[i].data.length > 0) d[i] = { ...d[i], data: mutate(r, d[i].data, [varint(0x21), Buffer.of(0x40), Buffer.of(0xff), Buffer.of(0x3f, 0xff)]) };
        break;
      case 'bad-frame': {
        const target = r.pick([2, ...new Set(d.map((x) => x.streamId).filter((id) => id % 4 === 0))]);
        d.splice(r.int(d.length + 1), 0, { streamId: target, data: badFrame(r), fin: false });
        break;
      }
      case 'bad-fields': {
        const target = firstRequestId + 4 * (10 + r.int(10));
        d.push({ streamId: target, data: frame(FRAME_HEADERS, encodeSection(r, t, badFields(r), false).bytes), fin: r.chance(0.8) });
        break;
      }
      case 'drop':
        d.splice(i, 1);
        break;
      case 'dup':
        d.splice(i, 0, d[i]);
        break;
      case 'swap': {
        const j = r.int(d.length);
        [d[i], d[j]] = [d[j], d[i]];
        break;
      }
      case 'fin':
        d[i] = { ...d[i], fin: !d[i].fin };
        break;
      case 'restream':
        d[i] = { ...d[i], streamId: r.pick([0, 2, 3, 6, 7, 10, 11, 14, 18, 400, 2 ** 20]) };
        break;
      case 'encoder-junk':
        d.push({ streamId: 6, data: r.weighted<() => Buffer>([
          [1, () => Buffer.of(0x3f, 0xff, 0xff, 0xff, 0x7f)], // capacity far above the maximum
          [1, () => Buffer.of(0x80 | 0x3f, 0xff, 0x7f, 0x01, 0x61)], // insert with a dynamic name index far out
          [1, () => Buffer.of(0x1f, 0x50)], // duplicate of a missing entry
          [1, () => Buffer.of(0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x0f)], // integer overflow
          [1, () => Buffer.concat([Buffer.of(0x20 | 0x1f, 0xe1, 0x1f), Buffer.of(0x40 | 0x20 | 3), Buffer.of(0xff, 0xff, 0xff), Buffer.of(0x01, 0x61)])], // Huffman garbage (EOS)
          [1, () => r.bytes(1 + r.int(40))],
        ])(), fin: r.chance(0.1) });
        break;
      case 'decoder-junk':
        d.push({ streamId: 10, data: Buffer.concat([varint(0x03), r.bytes(1 + r.int(6))]), fin: false });
        break;
      case 'reset':
        s.resets.push([r.pick([...new Set(d.map((x) => x.streamId))]), r.pick([0x10c, 0x100, 0x101, 2 ** 30])]);
        break;
      case 'flood': {
        // Many streams each with only a blocked section (RFC 9204 §2.1.2 bounds blocked streams).
        for (let j = 0; j < 30; j++) {
          d.push({ streamId: firstRequestId + 4 * (40 + j), data: frame(FRAME_HEADERS, Buffer.of(0x05, 0x00, 0x80)), fin: r.chance(0.5) });
        }
        break;
      }
    }
  }
  return { deliveries: d, expected: null, refusedUni: [], inserts: Infinity, acks: null, resets: s.resets, label: `mutated ${ops.join('+')}` };
}

export function generateScript(r: Rand, firstRequestId = 0): H3Script {
  return r.chance(0.35) ? validScript(r, 6, firstRequestId) : mutatedScript(r, firstRequestId);
}
