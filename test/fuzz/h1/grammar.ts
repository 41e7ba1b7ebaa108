// HTTP/1.1 request grammar (RFC 9112) for the fuzzer: request lines, header sections and bodies built from
// weighted choices that are mostly valid and often nearly valid (the forms request smuggling and parser
// differentials are made of: CL.TE, TE.CL, TE.TE, CL.CL, obs-fold, bare LF, odd versions and methods, chunk
// sizes and extensions), pipelined several to a connection, then sometimes mutated byte by byte and split
// across TCP writes. Paths pick the fuzz backend's answer kind (test/fuzz/backend.ts).
import type { Rand } from '../random.ts';
import { mutate, splitWrites } from '../mutate.ts';
import type { WireCase } from '../wire.ts';


const METHODS: ReadonlyArray<readonly [number, string]> = [
  [30, 'GET'],
  [15, 'POST'],
  [4, 'HEAD'],
  [4, 'PUT'],
  [3, 'DELETE'],
  [3, 'OPTIONS'],
  [3, 'PATCH'],
  [2, 'CONNECT'],
  [2, 'TRACE'],
  [1, 'PRI'],
  [1, 'get'],
  [1, 'GETT'],
  [1, 'PROPFIND'],
  [1, 'MKCOL'],
  [1, 'QUERY'],
  [1, 'SEARCH'],
  [1, 'M-SEARCH'],
  [1, 'ACL'],
  [1, 'G ET'],
  [1, ''],
  [1, 'A'.repeat(200)],
  [1, 'GET\0'],
];

/** Paths of the fuzz backend (see backend.ts) and paths quiclb treats specially. */
const PATHS = ['/', '/index.php', '/ok', '/204', '/304', '/big', '/chunked', '/slow', '/close', '/early', '/stats', '/health', '/metrics', '/dashboard', '/api/test', '/login/index.php', '/dashboard/backends/fuzz-1/drain'];

function target(r: Rand, method: string): string {
  const path = r.pick(PATHS);
  return r.weighted<() => string>([
    [30, () => path],
    [6, () => `${path}?id=${r.int(1000)}&q=${encodeURIComponent('a b')}`],
    [3, () => `http://moodle.example.edu${path}`],
    [2, () => `https://moodle.example.edu:9443${path}`],
    [1, () => `http://user:pw@moodle.example.edu${path}`],
    [1, () => 'http:///x'],
    [1, () => 'HTTP://MOODLE.EXAMPLE.EDU/'],
    [2, () => (method === 'CONNECT' ? 'moodle.example.edu:443' : '*')],
    [1, () => '*'],
    [2, () => '/%2e%2e/%2e%2e/etc/passwd'],
    [1, () => '/../../x'],
    [1, () => '//double//slash'],
    [1, () => '/a#fragment'],
    [1, () => '/a b'],
    [1, () => '/a\tb'],
    [1, () => '/caf\u00e9'],
    [1, () => '/\u00ff\u0080'],
    [1, () => '/%00'],
    [1, () => '/%zz'],
    [1, () => ''],
    [1, () => 'noslash'],
    [1, () => `/${'a'.repeat(r.size(20_000))}`],
    [1, () => `/?${'q=1&'.repeat(r.size(3000))}`],
  ])();
}

const VERSIONS: ReadonlyArray<readonly [number, string]> = [
  [40, 'HTTP/1.1'],
  [6, 'HTTP/1.0'],
  [1, 'HTTP/2.0'],
  [1, 'HTTP/2'],
  [1, 'HTTP/0.9'],
  [1, 'HTTP/1.2'],
  [1, 'HTTP/3.0'],
  [1, 'HTTP/9.9'],
  [1, 'http/1.1'],
  [1, 'HTTP/1.1 '],
  [1, 'HTTP/11'],
  [1, 'HTTP/1.10'],
  [1, 'HTTP/1'],
  [1, 'HTTPS/1.1'],
  [1, ''],
];

/** A header field line; `name: value` unless a generator wants it malformed. */
type Field = string;

function hostFields(r: Rand): Field[] {
  return r.weighted<() => Field[]>([
    [30, () => ['Host: moodle.example.edu']],
    [5, () => ['Host: a']],
    [3, () => ['Host: moodle.example.edu:8080']],
    [2, () => ['Host: [::1]:80']],
    [2, () => []],
    [2, () => ['Host: a', 'Host: b']],
    [1, () => ['Host: a', 'Host: a']],
    [1, () => ['Host: ']],
    [1, () => ['Host: a b']],
    [1, () => ['Host: a/b']],
    [1, () => ['Host: user@a']],
    [1, () => ['Host: a:99999']],
    [1, () => ['Host: a:']],
    [1, () => [`Host: ${'h'.repeat(r.size(5000))}`]],
    [1, () => ['host:a']],
    [1, () => ['HOST:   moodle.example.edu   ']],
  ])();
}

interface Framing {
  fields: Field[];
  body: string;
  kind: string;
}

function chunkedBody(r: Rand, data: string): string {
  let out = '';
  let pos = 0;
  while (pos < data.length) {
    const n = 1 + r.int(Math.max(1, Math.min(data.length - pos, 4096)));
    let size = n.toString(16);
    size = r.weighted<() => string>([
      [20, () => size],
      [2, () => size.toUpperCase()],
      [1, () => `000${size}`],
      [1, () => `${size};ext=1`],
      [1, () => `${size};ext="quoted"`],
      [1, () => `${size};`],
      [1, () => `${size} `],
      [1, () => ` ${size}`],
      [1, () => `0x${size}`],
      [1, () => `${size}\t;a`],
    ])();
    out += `${size}\r\n${data.slice(pos, pos + n)}${r.chance(0.97) ? '\r\n' : r.pick(['', '\n', 'XX', '\r'])}`;
    pos += n;
  }
  const last = r.weighted<() => string>([
    [20, () => '0\r\n\r\n'],
    [2, () => '0\r\nTrailer-Field: v\r\n\r\n'],
    [1, () => '0;ext\r\n\r\n'],
    [1, () => '00\r\n\r\n'],
    [1, () => '0\r\n'],
    [1, () => '0\r\nBad Trailer\r\n\r\n'],
    [1, () => '0\r\ncontent-length: 5\r\n\r\n'],
    [1, () => ''],
    [1, () => 'ffffffffffffffff\r\n'],
    [1, () => '10000000000000000\r\n'],
    [1, () => '-1\r\n\r\n'],
    [1, () => '0\n\n'],
  ])();
  return out + last;
}

/** A request that a parser which reads the body wrongly would see as a second request. */
const SMUGGLED = 'GET /smuggled HTTP/1.1\r\nHost: smuggled.example\r\n\r\n';

function framing(r: Rand, method: string): Framing {
  const size = r.weighted([
    [10, 0],
    [20, 1 + r.int(64)],
    [5, r.size(8192)],
    [1, r.size(300_000)],
  ]);
  const data = r.chance(0.15) ? SMUGGLED.padEnd(size, 'x') : 'x'.repeat(size);
  const wantsBody = method === 'POST' || method === 'PUT' || method === 'PATCH' || r.chance(0.1);
  if (!wantsBody) {
    return r.weighted<() => Framing>([
      [20, () => ({ fields: [], body: '', kind: 'none' })],
      [2, () => ({ fields: ['Content-Length: 0'], body: '', kind: 'cl0' })],
      [1, () => ({ fields: [`Content-Length: ${data.length}`], body: data, kind: 'cl' })],
    ])();
  }
  return r.weighted<() => Framing>([
    [20, () => ({ fields: [`Content-Length: ${data.length}`], body: data, kind: 'cl' })],
    [14, () => ({ fields: ['Transfer-Encoding: chunked'], body: chunkedBody(r, data), kind: 'chunked' })],
    [2, () => ({ fields: [`Content-Length: ${data.length + r.range(1, 50)}`], body: data, kind: 'cl-short' })],
    [2, () => ({ fields: [`Content-Length: ${Math.max(0, data.length - r.range(1, 5))}`], body: data, kind: 'cl-long' })],
    // CL.TE and TE.CL (RFC 9112 §6.3: both present is a smuggling attempt).
    [3, () => ({ fields: [`Content-Length: ${r.int(10)}`, 'Transfer-Encoding: chunked'], body: chunkedBody(r, data), kind: 'cl.te' })],
    [3, () => ({ fields: ['Transfer-Encoding: chunked', `Content-Length: ${data.length}`], body: data, kind: 'te.cl' })],
    // CL.CL
    [2, () => ({ fields: [`Content-Length: ${data.length}`, `Content-Length: ${data.length + 1}`], body: data, kind: 'cl.cl' })],
    [1, () => ({ fields: [`Content-Length: ${data.length}`, `Content-Length: ${data.length}`], body: data, kind: 'cl=cl' })],
    [1, () => ({ fields: [`Content-Length: ${data.length}, ${data.length}`], body: data, kind: 'cl-list' })],
    [1, () => ({ fields: [`Content-Length: ${r.pick(['+', ' ', '0', '-', '0x'])}${data.length}`], body: data, kind: 'cl-odd' })],
    [1, () => ({ fields: [`Content-Length: ${r.pick(['18446744073709551616', '9007199254740993', '99999999999999999999', '1e3', 'abc', ''])}`], body: data, kind: 'cl-huge' })],
    // TE.TE: obfuscated Transfer-Encoding.
    [
      4,
      () => ({
        fields: [
          r.pick([
            'Transfer-Encoding: xchunked',
            'Transfer-Encoding: Chunked',
            'Transfer-Encoding: chunked, chunked',
            'Transfer-Encoding: gzip, chunked',
            'Transfer-Encoding: chunked, gzip',
            'Transfer-Encoding: identity',
            'Transfer-Encoding:  chunked ',
            'Transfer-Encoding:\tchunked',
            'Transfer-Encoding : chunked',
            'Transfer_Encoding: chunked',
            'Transfer-Encoding: "chunked"',
            'Transfer-Encoding: chunked\r\nTransfer-Encoding: x',
            'Transfer-Encoding:\r\n chunked',
            'Transfer-Encoding: ch\u00fcnked',
          ]),
        ],
        body: chunkedBody(r, data),
        kind: 'te.te',
      }),
    ],
    [1, () => ({ fields: [], body: data, kind: 'unframed' })],
  ])();
}

/** Header fields a Moodle client sends. */
function goodField(r: Rand): Field {
  return r.weighted<() => string>([
    [10, () => 'User-Agent: quiclb-fuzz/1'],
    [5, () => 'Accept: */*'],
    [3, () => `Cookie: MoodleSession=${r.int(1e6)}; QUICLB_AFFINITY=${r.pick(['abc', '', '0000000000000000', 'x'.repeat(40)])}`],
    [2, () => 'Accept-Encoding: gzip, br, zstd'],
    [2, () => `X-Forwarded-For: ${r.pick(['6.6.6.6', '::1', 'garbage', '1.1.1.1, 2.2.2.2', ''])}`],
    [1, () => 'Forwarded: for=6.6.6.6;proto=https'],
    [1, () => 'X-Real-IP: 6.6.6.6'],
    [2, () => `Connection: ${r.pick(['close', 'keep-alive', 'Upgrade', 'close, keep-alive', 'x-custom', 'TE'])}`],
    [1, () => `Upgrade: ${r.pick(['websocket', 'h2c', 'HTTP/2.0', ''])}`],
    [1, () => 'HTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA'],
    [2, () => `Expect: ${r.pick(['100-continue', '100-continue', '100-Continue', 'something', ''])}`],
    [1, () => 'TE: trailers'],
    [1, () => 'Trailer: X-Checksum'],
    [1, () => 'Keep-Alive: timeout=5'],
    [1, () => 'Proxy-Connection: keep-alive'],
    [1, () => `Range: bytes=${r.pick(['0-1', '-5', '0-', 'x'])}`],
    [1, () => 'Authorization: Bearer not-the-token'],
    [1, () => `Origin: ${r.pick(['http://127.0.0.1', 'null', 'http://evil.example'])}`],
    [1, () => 'X-Utf8: caf\u00e9 \u00ff'],
    [1, () => `X-Long: ${'v'.repeat(r.size(20_000))}`],
  ])();
}

/** Header field lines a strict parser refuses (RFC 9112 §5: obs-fold, no colon, whitespace before it, CTLs). */
function badField(r: Rand): Field {
  return r.pick([
    'X-Folded: a\r\n b',
    'NoColon',
    ': empty-name',
    'Bad Name: x',
    'X-Ctl: a\u0001b',
    'X-Nul: a\u0000b',
    'X-Del: a\u007fb',
    'X-Trailing-Space : x',
    'X-Bare-CR: a\rb',
    '\tX-Leading-Tab: x',
    `${'n'.repeat(r.size(3000))}: x`,
  ]);
}

function extraFields(r: Rand): Field[] {
  const out: Field[] = [];
  const n = r.weighted([
    [10, r.int(4)],
    [2, r.size(40)],
    [1, r.range(250, 300)],
  ]);
  for (let i = 0; i < n; i++) out.push(goodField(r));
  // One request in five carries a malformed field line somewhere.
  if (r.chance(0.2)) out.splice(r.int(out.length + 1), 0, badField(r));
  return out;
}

/** One request's bytes (plus the generator path it took). */
export function generateRequest(r: Rand): { bytes: Buffer; kind: string } {
  const method = r.weighted(METHODS);
  const version = r.weighted(VERSIONS);
  const eol = r.weighted([
    [60, '\r\n'],
    [1, '\n'],
    [1, '\r'],
  ]);
  const frame = framing(r, method);
  const fields = [...hostFields(r), ...extraFields(r), ...frame.fields];
  // Shuffle a little: some parsers only fail when framing fields come first.
  if (r.chance(0.2)) fields.sort(() => r.float() - 0.5);
  const line = version === '' ? `${method} ${target(r, method)}` : `${method} ${target(r, method)} ${version}`;
  const sep = r.weighted([
    [50, ' '],
    [1, '  '],
    [1, '\t'],
  ]);
  const head = line.replace(/ /g, (m, off) => (off < method.length + 1 ? sep : m)) + eol + fields.map((f) => f + eol).join('') + eol;
  const kind = `${frame.kind}${version === 'HTTP/1.1' ? '' : ` ${version || 'nover'}`}${eol === '\r\n' ? '' : ' bad-eol'}`;
  return { bytes: Buffer.from(head + frame.body, 'latin1'), kind };
}

/** Tokens the byte mutator inserts: what HTTP/1.1 parsers branch on. */
export const H1_DICTIONARY: readonly Buffer[] = [
  '\r\n',
  '\r\n\r\n',
  '\n',
  '\r',
  ' ',
  '\t',
  ':',
  ';',
  ',',
  '\0',
  'HTTP/1.1',
  'HTTP/1.0',
  'Content-Length: ',
  'Transfer-Encoding: chunked',
  'chunked',
  'Host: ',
  'Connection: close',
  'Expect: 100-continue',
  '0\r\n\r\n',
  'ffffffff',
  SMUGGLED,
].map((s) => Buffer.from(s, 'latin1'));

/** A connection's worth of input: 1..4 pipelined requests, maybe mutated, split into writes. */
export function generateH1Case(r: Rand): WireCase {
  const count = r.weighted([
    [10, 1],
    [3, 2],
    [1, 3 + r.int(6)],
  ]);
  const parts: Buffer[] = [];
  const kinds: string[] = [];
  for (let i = 0; i < count; i++) {
    const req = generateRequest(r);
    parts.push(req.bytes);
    kinds.push(req.kind);
  }
  let bytes: Buffer = Buffer.concat(parts);
  let label = kinds.join('+');
  if (r.chance(0.35)) {
    bytes = mutate(r, bytes, H1_DICTIONARY);
    label += ' mutated';
  }
  if (r.chance(0.03)) {
    bytes = r.bytes(r.size(2048));
    label = 'random bytes';
  }
  const writes = splitWrites(r, bytes);
  // A few slow clients: pauses between writes (well under server.readTimeout).
  const gapsMs = writes.length > 1 && writes.length < 20 && r.chance(0.1) ? writes.slice(1).map(() => r.int(150)) : [];
  const finish = r.weighted([
    [14, 'wait'],
    [4, 'end'],
    [2, 'reset'],
  ] as const);
  return { writes, gapsMs, finish, label };
}
