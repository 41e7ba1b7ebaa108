// HTTP-date parsing (RFC 9110 §5.6.7). Recipients must accept all three formats; Date.parse is not used
// because it reads the asctime form as local time and accepts much that is not an HTTP-date.

const MONTHS: Record<string, number> = { jan: 0, feb: 1, mar: 2, apr: 3, may: 4, jun: 5, jul: 6, aug: 7, sep: 8, oct: 9, nov: 10, dec: 11 };

// IMF-fixdate: Sun, 06 Nov 1994 08:49:37 GMT
const IMF = /^[a-z]{3}, (\d{2}) ([a-z]{3}) (\d{4}) (\d{2}):(\d{2}):(\d{2}) gmt$/i;
// obsolete RFC 850: Sunday, 06-Nov-94 08:49:37 GMT
const RFC850 = /^[a-z]{6,9}, (\d{2})-([a-z]{3})-(\d{2}) (\d{2}):(\d{2}):(\d{2}) gmt$/i;
// obsolete asctime: Sun Nov  6 08:49:37 1994
const ASCTIME = /^[a-z]{3} ([a-z]{3}) ([ \d]\d) (\d{2}):(\d{2}):(\d{2}) (\d{4})$/i;

/** Milliseconds since the epoch, or undefined when `value` is not an HTTP-date. */
export function parseHttpDate(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const v = value.trim();
  let m = IMF.exec(v);
  if (m !== null) return utc(Number(m[3]), m[2], Number(m[1]), m[4], m[5], m[6]);
  m = RFC850.exec(v);
  if (m !== null) {
    // RFC 9110 §5.6.7: a two-digit year more than 50 years in the future is in the past century.
    let year = 2000 + Number(m[3]);
    if (year > new Date().getUTCFullYear() + 50) year -= 100;
    return utc(year, m[2], Number(m[1]), m[4], m[5], m[6]);
  }
  m = ASCTIME.exec(v);
  if (m !== null) return utc(Number(m[6]), m[1], Number(m[2].trim()), m[3], m[4], m[5]);
  return undefined;
}

function utc(year: number, mon: string, day: number, h: string, min: string, s: string): number | undefined {
  const month = MONTHS[mon.toLowerCase()];
  if (month === undefined || day < 1 || day > 31 || Number(h) > 23 || Number(min) > 59 || Number(s) > 60) return undefined;
  return Date.UTC(year, month, day, Number(h), Number(min), Number(s));
}

/** IMF-fixdate for `ms`. */
export function formatHttpDate(ms: number): string {
  return new Date(ms).toUTCString();
}
