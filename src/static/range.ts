// Byte ranges (RFC 9110 §14): one range is answered 206 with Content-Range; several are answered with the
// whole file (a server may ignore Range, §14.2), which keeps multipart/byteranges out; an unsatisfiable single
// range is 416 with Content-Range: bytes */size (§15.5.17). Syntax errors mean "no Range" (§14.2).

export type RangeResult =
  | { kind: 'none' }
  | { kind: 'single'; start: number; end: number }
  | { kind: 'unsatisfiable' };

const SPEC_RE = /^(\d*)-(\d*)$/;

export function parseRange(header: string | undefined, size: number): RangeResult {
  if (header === undefined) return { kind: 'none' };
  const m = /^bytes=(.*)$/i.exec(header.trim());
  if (m === null) return { kind: 'none' }; // another unit
  const specs = m[1].split(',').map((s) => s.trim()).filter((s) => s !== '');
  if (specs.length !== 1) return { kind: 'none' };
  const spec = SPEC_RE.exec(specs[0]);
  if (spec === null || (spec[1] === '' && spec[2] === '')) return { kind: 'none' };
  if (spec[1] === '') {
    // suffix-range: the last N bytes (§14.1.2); N = 0 selects nothing.
    const n = Number(spec[2]);
    if (n === 0 || size === 0) return { kind: 'unsatisfiable' };
    return { kind: 'single', start: Math.max(0, size - n), end: size - 1 };
  }
  const start = Number(spec[1]);
  const last = spec[2] === '' ? Infinity : Number(spec[2]);
  if (last < start) return { kind: 'none' }; // invalid range-spec: ignore the header
  if (start >= size) return { kind: 'unsatisfiable' };
  return { kind: 'single', start, end: Math.min(last, size - 1) };
}
