// healthCheck.expectStatus: which HTTP status codes count as a passing check. Accepted forms, comma
// separated: a class ("2xx"), an exact code ("200") or an inclusive range ("200-399").

export class ExpectStatusError extends Error {
  readonly code = 'QUICLB_HEALTH_BAD_EXPECT_STATUS';
  constructor(spec: string) {
    super(`healthCheck.expectStatus "${spec}" is not valid: use a class like "2xx", a code like "200", a range like "200-399", or a comma list of those`);
    this.name = 'ExpectStatusError';
  }
}

export type StatusMatcher = (status: number) => boolean;

interface Range {
  lo: number;
  hi: number;
}

function parsePart(part: string, spec: string): Range {
  let m = /^([1-5])xx$/i.exec(part);
  if (m) {
    const c = Number(m[1]) * 100;
    return { lo: c, hi: c + 99 };
  }
  m = /^(\d{3})$/.exec(part);
  if (m) return { lo: Number(m[1]), hi: Number(m[1]) };
  m = /^(\d{3})\s*-\s*(\d{3})$/.exec(part);
  if (m && Number(m[1]) <= Number(m[2])) return { lo: Number(m[1]), hi: Number(m[2]) };
  throw new ExpectStatusError(spec);
}

export function parseExpectStatus(spec: string): StatusMatcher {
  const parts = spec.split(',').map((p) => p.trim());
  if (parts.length === 0 || parts.some((p) => p === '')) throw new ExpectStatusError(spec);
  const ranges = parts.map((p) => parsePart(p, spec));
  return (status) => ranges.some((r) => status >= r.lo && status <= r.hi);
}
