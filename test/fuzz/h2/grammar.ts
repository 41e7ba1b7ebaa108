// HTTP/2 connection scripts (RFC 9113) for the fuzzer: the client preface, SETTINGS, then a sequence of
// actions — requests (HEADERS with HPACK blocks, valid or not, split into CONTINUATION frames, padded, with
// priority), bodies, RST_STREAM, WINDOW_UPDATE, PING, PRIORITY, GOAWAY, PUSH_PROMISE, unknown frame types —
// and the known attack shapes (CONTINUATION flood CVE-2024-27316, rapid reset CVE-2023-44487, SETTINGS / PING /
// empty-frame floods CVE-2019-9512..9518, window overflow), with stream ids, lengths and flags sometimes wrong.
// The bytes are then sometimes mutated and split across TLS writes.
import type { Rand } from '../random.ts';
import { mutate, splitWrites } from '../mutate.ts';
import type { WireCase } from '../wire.ts';
import { avoiding } from '../known-bugs.ts';
import { HpackEncoder, badHeaderBlock, type Field } from './hpack.ts';
import {
  F_ACK,
  F_END_HEADERS,
  F_END_STREAM,
  F_PADDED,
  F_PRIORITY,
  PREFACE,
  T_CONTINUATION,
  T_DATA,
  T_GOAWAY,
  T_HEADERS,
  T_PING,
  T_PRIORITY,
  T_PUSH_PROMISE,
  T_RST_STREAM,
  T_SETTINGS,
  T_WINDOW_UPDATE,
  h2frame,
  settingsPayload,
  u32,
} from './frames.ts';

// '/big' (a 256 KiB answer, more than one stream window) is left out while known bug h2-cancel-spin is listed:
// cancelling it wedges the shard (test/fuzz/known-bugs.ts).
const PATHS = ['/', '/ok', '/index.php', '/big', '/chunked', '/204', '/304', '/slow', '/close', '/early', '/stats', '/api/test', '/course/view.php?id=2'].filter(
  (p) => p !== '/big' || !avoiding('h2-large-response'),
);

function requestFields(r: Rand, body: number): Field[] {
  const method = body > 0 ? r.pick(['POST', 'PUT']) : r.pick(['GET', 'GET', 'GET', 'HEAD', 'OPTIONS', 'DELETE']);
  const f: Field[] = [
    [':method', method],
    [':scheme', 'https'],
    [':authority', r.pick(['moodle.example.edu', 'localhost:9443', 'a'])],
    [':path', r.pick(PATHS)],
  ];
  const n = r.size(10);
  for (let i = 0; i < n; i++) {
    f.push(
      r.pick<Field>([
        ['user-agent', 'quiclb-fuzz/1'],
        ['accept', '*/*'],
        ['accept-encoding', 'gzip, deflate, br'],
        ['cookie', `MoodleSession=${r.int(100)}`],
        ['cookie', 'QUICLB_AFFINITY=x'],
        ['x-custom', `v${r.int(5)}`],
        ['content-type', 'application/x-www-form-urlencoded'],
        ['x-forwarded-for', '6.6.6.6'],
        ['te', 'trailers'],
      ]),
    );
  }
  if (body > 0 && r.chance(0.7)) f.push(['content-length', String(body)]);
  return f;
}

/** Request field lists RFC 9113 §8.2, §8.3 call malformed: a server answers PROTOCOL_ERROR (stream) or 400. */
function badFields(r: Rand): Field[] {
  const ok: Field[] = [
    [':method', 'GET'],
    [':scheme', 'https'],
    [':authority', 'a'],
    [':path', '/'],
  ];
  return r.weighted<() => Field[]>([
    [1, () => ok.slice(1)],
    [1, () => ok.slice(0, 3)],
    [1, () => [...ok, [':path', '/again']]],
    [1, () => [...ok, ['Upper-Case', 'x']]],
    [1, () => [...ok, ['connection', 'keep-alive']]],
    [1, () => [...ok, ['transfer-encoding', 'chunked']]],
    [1, () => [...ok, ['upgrade', 'h2c']]],
    [1, () => [...ok, ['te', 'gzip']]],
    [1, () => [...ok, ['x', 'a\r\nb']]],
    [1, () => [...ok, ['x', 'a\0b']]],
    [1, () => [...ok, ['x y', 'z']]],
    [1, () => [...ok, ['', 'empty-name']]],
    [1, () => [['x', 'y'], ...ok]],
    [1, () => [...ok, [':status', '200']]],
    [1, () => [...ok, [':protocol', 'websocket']]],
    [1, () => [[':method', 'CONNECT'], [':authority', 'a:443']]],
    [1, () => [[':method', 'CONNECT'], [':authority', 'a:443'], [':path', '/']]],
    [1, () => [...ok, ['content-length', '5'], ['content-length', '6']]],
    [1, () => [...ok, ['content-length', 'abc']]],
    [1, () => [...ok, ['host', 'b']]],
    [1, () => [...ok.slice(0, 3), [':path', '']]],
    [1, () => [...ok.slice(0, 3), [':path', 'noslash']]],
    [1, () => [...ok.slice(0, 3), [':path', '*']]],
    [1, () => [[':method', 'OPTIONS'], ...ok.slice(1, 3), [':path', '*']]],
    [1, () => [...ok, ['x-big', 'v'.repeat(r.range(15_000, 40_000))]]],
    [1, () => [...ok, ...Array.from({ length: r.range(250, 400) }, (_, i): Field => [`x-${i}`, 'v'])]],
    [1, () => []],
  ])();
}

interface Conn {
  enc: HpackEncoder;
  next: number;
  open: number[];
  out: Buffer[];
  labels: string[];
}

/** HEADERS (+ CONTINUATION) for `block` on `sid`, sometimes padded or with priority, sometimes split. */
function headerFrames(r: Rand, sid: number, block: Buffer, endStream: boolean): Buffer[] {
  const pieces: Buffer[] = [];
  const split = r.chance(0.2) ? 1 + r.int(4) : 0;
  let rest = block;
  const first = split > 0 ? rest.subarray(0, r.int(rest.length + 1)) : rest;
  rest = rest.subarray(first.length);
  let flags = endStream ? F_END_STREAM : 0;
  if (split === 0 || rest.length === 0) flags |= F_END_HEADERS;
  let payload = first;
  if (r.chance(0.1)) {
    flags |= F_PRIORITY;
    payload = Buffer.concat([u32(r.chance(0.9) ? 0 : sid), Buffer.of(r.int(256)), payload]); // depend on self (§5.3.1) now and then
  }
  if (r.chance(0.1)) {
    flags |= F_PADDED;
    const pad = r.int(20);
    payload = Buffer.concat([Buffer.of(r.chance(0.9) ? pad : 255), payload, Buffer.alloc(pad)]);
  }
  pieces.push(h2frame(T_HEADERS, flags, sid, payload));
  if (!(flags & F_END_HEADERS)) {
    for (let i = 0; i < split || rest.length > 0; i++) {
      const n = i === split - 1 ? rest.length : r.int(rest.length + 1);
      const part = rest.subarray(0, n);
      rest = rest.subarray(n);
      pieces.push(h2frame(T_CONTINUATION, rest.length === 0 ? F_END_HEADERS : 0, sid, part));
      if (rest.length === 0) break;
    }
  }
  return pieces;
}

function dataFrames(r: Rand, sid: number, size: number, endStream: boolean): Buffer[] {
  const out: Buffer[] = [];
  let left = size;
  while (left > 0) {
    const n = Math.min(left, r.chance(0.5) ? 16384 : 1 + r.int(left));
    left -= n;
    let flags = left === 0 && endStream ? F_END_STREAM : 0;
    let payload = Buffer.alloc(n, 0x61);
    if (r.chance(0.05)) {
      flags |= F_PADDED;
      payload = Buffer.concat([Buffer.of(10), payload, Buffer.alloc(10)]);
    }
    out.push(h2frame(T_DATA, flags, sid, payload));
  }
  if (size === 0 && endStream) out.push(h2frame(T_DATA, F_END_STREAM, sid, Buffer.alloc(0)));
  return out;
}

/** The stream id for the next request: mostly the next odd one (RFC 9113 §5.1.1), sometimes a wrong one. */
function streamId(r: Rand, c: Conn): number {
  const id = r.weighted<() => number>([
    [40, () => c.next],
    [1, () => 0],
    [1, () => c.next + 1], // even: server-initiated
    [1, () => Math.max(1, c.next - 4)], // reused / lower
    [1, () => 0x7fffffff],
    [1, () => c.next + 2 * r.int(1000)],
  ])();
  if (id >= c.next && id % 2 === 1) c.next = id + 2;
  return id;
}

function request(r: Rand, c: Conn): void {
  const body = r.chance(0.7) ? 0 : r.size(100_000);
  const bad = r.chance(0.15);
  const sid = streamId(r, c);
  const block = r.chance(0.05) ? badHeaderBlock(r) : c.enc.encode(r, bad ? badFields(r) : requestFields(r, body));
  c.out.push(...headerFrames(r, sid, block, body === 0 && r.chance(0.95)));
  if (body > 0) c.out.push(...dataFrames(r, sid, body, r.chance(0.9)));
  if (r.chance(0.1)) c.out.push(h2frame(T_HEADERS, F_END_HEADERS | F_END_STREAM, sid, c.enc.encode(r, [['x-trailer', 'v']]))); // trailers
  c.open.push(sid);
  c.labels.push(bad ? 'bad-fields' : 'req');
}

function action(r: Rand, c: Conn): void {
  const sid = c.open.length > 0 ? r.pick(c.open) : 1;
  const kind = r.weighted<string>([
    [30, 'request'],
    [3, 'rst'],
    [4, 'window'],
    [3, 'ping'],
    [2, 'priority'],
    [2, 'settings'],
    [1, 'goaway'],
    [1, 'push-promise'],
    [2, 'unknown'],
    [1, 'data-closed'],
    [1, 'continuation-flood'],
    [1, 'rapid-reset'],
    [1, 'settings-flood'],
    [1, 'ping-flood'],
    [1, 'empty-frames'],
    [1, 'window-overflow'],
    [1, 'huge-length'],
    [1, 'stray-continuation'],
    [1, 'bad-fixed-length'],
  ]);
  c.labels.push(kind === 'request' ? '' : kind);
  switch (kind) {
    case 'request':
      request(r, c);
      return;
    case 'rst':
      c.out.push(h2frame(T_RST_STREAM, 0, r.chance(0.9) ? sid : r.pick([0, c.next + 10]), u32(r.pick([0, 1, 2, 8, 0xb, 0xffffffff]))));
      return;
    case 'window':
      c.out.push(h2frame(T_WINDOW_UPDATE, 0, r.chance(0.5) ? 0 : sid, u32(r.pick([1, 65535, 1 << 20, 0x7fffffff, 0, 0x80000001]))));
      return;
    case 'ping':
      c.out.push(h2frame(T_PING, r.chance(0.1) ? F_ACK : 0, r.chance(0.95) ? 0 : sid, r.bytes(8)));
      return;
    case 'priority':
      c.out.push(h2frame(T_PRIORITY, 0, r.chance(0.9) ? sid : 0, Buffer.concat([u32(r.chance(0.8) ? 0 : sid), Buffer.of(r.int(256))])));
      return;
    case 'settings':
      c.out.push(
        h2frame(
          T_SETTINGS,
          r.chance(0.1) ? F_ACK : 0,
          r.chance(0.95) ? 0 : 1,
          settingsPayload([[r.pick([1, 2, 3, 4, 5, 6, 8, 9, 0x10, 0xffff]), r.pick([0, 1, 2, 100, 16383, 16384, 65535, 0x7fffffff, 0x80000000, 0xffffffff, 1 << 24])]]),
        ),
      );
      return;
    case 'goaway':
      c.out.push(h2frame(T_GOAWAY, 0, 0, Buffer.concat([u32(r.int(100)), u32(r.int(14)), r.bytes(r.int(10))])));
      return;
    case 'push-promise':
      c.out.push(h2frame(T_PUSH_PROMISE, F_END_HEADERS, sid, Buffer.concat([u32(2), c.enc.encode(r, [[':method', 'GET'], [':path', '/'], [':scheme', 'https'], [':authority', 'a']])])));
      return;
    case 'unknown':
      c.out.push(h2frame(0x0a + r.int(0xf5), r.int(256), r.int(10), r.bytes(r.int(50))));
      return;
    case 'data-closed':
      c.out.push(h2frame(T_DATA, F_END_STREAM, r.pick([0, sid, c.next + 20]), Buffer.from('late')));
      return;
    case 'continuation-flood': {
      // CVE-2024-27316: HEADERS without END_HEADERS, then CONTINUATION frames without end.
      const s = streamId(r, c);
      c.out.push(h2frame(T_HEADERS, 0, s, c.enc.encode(r, requestFields(r, 0))));
      const n = r.range(100, 5000);
      const piece = Buffer.from([0x40, 0x01, 0x78, 0x01, 0x79]); // literal x: y, incremental indexing
      for (let i = 0; i < n; i++) c.out.push(h2frame(T_CONTINUATION, 0, s, r.chance(0.5) ? piece : Buffer.alloc(0)));
      return;
    }
    case 'rapid-reset': {
      // CVE-2023-44487: open and cancel streams as fast as possible.
      const n = r.range(50, 600);
      for (let i = 0; i < n; i++) {
        const s = c.next;
        c.next += 2;
        c.out.push(h2frame(T_HEADERS, F_END_HEADERS | F_END_STREAM, s, c.enc.encode(r, requestFields(r, 0))));
        c.out.push(h2frame(T_RST_STREAM, 0, s, u32(8)));
      }
      return;
    }
    case 'settings-flood': {
      const n = r.range(100, 3000);
      for (let i = 0; i < n; i++) c.out.push(h2frame(T_SETTINGS, 0, 0, settingsPayload([[4, 65535 + i]])));
      return;
    }
    case 'ping-flood': {
      const n = r.range(100, 3000);
      for (let i = 0; i < n; i++) c.out.push(h2frame(T_PING, 0, 0, Buffer.alloc(8, i & 0xff)));
      return;
    }
    case 'empty-frames': {
      // CVE-2019-9518: empty DATA / HEADERS frames cost the server work and send nothing.
      const s = streamId(r, c);
      c.out.push(h2frame(T_HEADERS, F_END_HEADERS, s, c.enc.encode(r, requestFields(r, 1))));
      const n = r.range(100, 5000);
      for (let i = 0; i < n; i++) c.out.push(h2frame(T_DATA, 0, s, Buffer.alloc(0)));
      return;
    }
    case 'window-overflow':
      c.out.push(h2frame(T_WINDOW_UPDATE, 0, sid, u32(0x7fffffff)), h2frame(T_WINDOW_UPDATE, 0, sid, u32(0x7fffffff)));
      return;
    case 'huge-length':
      // A declared length far above SETTINGS_MAX_FRAME_SIZE, with only a little payload behind it.
      c.out.push(h2frame(r.pick([T_DATA, T_HEADERS, T_SETTINGS, 0x42]), 0, sid, r.bytes(r.int(100)), r.pick([16385, 1 << 20, 0xffffff])));
      return;
    case 'stray-continuation':
      c.out.push(h2frame(T_CONTINUATION, F_END_HEADERS, sid, c.enc.encode(r, [['x', 'y']])));
      return;
    case 'bad-fixed-length':
      c.out.push(
        r.pick([
          h2frame(T_PING, 0, 0, r.bytes(r.pick([0, 7, 9]))),
          h2frame(T_RST_STREAM, 0, sid, r.bytes(r.pick([0, 3, 5]))),
          h2frame(T_WINDOW_UPDATE, 0, 0, r.bytes(r.pick([0, 3, 5]))),
          h2frame(T_PRIORITY, 0, sid, r.bytes(r.pick([0, 4, 6]))),
          h2frame(T_SETTINGS, 0, 0, r.bytes(r.pick([1, 5, 7]))),
          h2frame(T_SETTINGS, F_ACK, 0, r.bytes(6)),
          h2frame(T_GOAWAY, 0, 0, r.bytes(r.pick([0, 4, 7]))),
        ]),
      );
      return;
  }
}

/** Tokens the byte mutator inserts: frame headers with odd types, lengths and flags. */
const H2_DICTIONARY: readonly Buffer[] = [Buffer.alloc(9), Buffer.from('000000040100000000', 'hex'), Buffer.from('ffffff', 'hex'), Buffer.from('7fffffff', 'hex'), Buffer.from('80000001', 'hex'), Buffer.of(0x09), Buffer.of(0x3f, 0xe1, 0x1f), PREFACE];

export function generateH2Case(r: Rand): WireCase {
  const c: Conn = { enc: new HpackEncoder(), next: 1, open: [], out: [], labels: [] };
  c.out.push(r.chance(0.98) ? PREFACE : mutate(r, PREFACE, [], 2));
  if (r.chance(0.95)) {
    const list: Array<[number, number]> = [];
    if (r.chance(0.5)) list.push([2, 0]); // ENABLE_PUSH 0
    if (r.chance(0.5)) list.push([4, r.pick([65535, 1 << 20, 0x7fffffff])]); // INITIAL_WINDOW_SIZE
    if (r.chance(0.3)) list.push([5, r.pick([16384, 1 << 20, 16777215])]); // MAX_FRAME_SIZE
    if (r.chance(0.3)) list.push([1, r.pick([0, 4096, 65536])]); // HEADER_TABLE_SIZE
    if (r.chance(0.2)) list.push([3, r.pick([0, 1, 100])]); // MAX_CONCURRENT_STREAMS
    if (r.chance(0.2)) list.push([6, r.pick([0, 100, 65536])]); // MAX_HEADER_LIST_SIZE
    if (r.chance(0.1)) list.push([8, 1]); // ENABLE_CONNECT_PROTOCOL (server-only)
    c.out.push(h2frame(T_SETTINGS, 0, 0, settingsPayload(list)));
  }
  // The ACK of the server's SETTINGS (sent blind: it always sends some first, RFC 9113 §3.4).
  if (r.chance(0.9)) c.out.push(h2frame(T_SETTINGS, F_ACK, 0, Buffer.alloc(0)));
  if (r.chance(0.3)) c.out.push(h2frame(T_WINDOW_UPDATE, 0, 0, u32(1 << 24)));
  const n = r.weighted([
    [10, 1 + r.int(3)],
    [3, 4 + r.int(20)],
  ]);
  for (let i = 0; i < n; i++) action(r, c);
  let bytes: Buffer = Buffer.concat(c.out);
  const labels = [...new Set(c.labels.filter((l) => l !== '' && l !== 'req'))];
  let label = labels.length > 0 ? labels.join('+') : 'requests';
  if (r.chance(0.2)) {
    bytes = mutate(r, bytes, H2_DICTIONARY);
    label += ' mutated';
  }
  const writes = splitWrites(r, bytes);
  const gapsMs = writes.length > 1 && writes.length < 20 && r.chance(0.05) ? writes.slice(1).map(() => r.int(100)) : [];
  const finish = r.weighted([
    [14, 'wait'],
    [3, 'end'],
    [2, 'reset'],
  ] as const);
  return { writes, gapsMs, finish, label };
}
