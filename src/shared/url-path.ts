// Turning a request target into path segments that are safe to join to a directory: percent-decoded exactly
// once, with every form of traversal refused rather than normalised (RFC 3986 §3.3 dot-segments, encoded
// separators, NUL, backslashes). Shared by static file serving (src/static) and FastCGI script resolution
// (src/fastcgi), which both map URL paths onto a document root. Pure: no file system access here.

export type UrlPathRefusal =
  /** The target does not start with "/" (absolute-form and authority-form are the frontend's to turn into origin-form). */
  | 'not-origin-form'
  /** A "%" not followed by two hex digits, or bytes that are not UTF-8 once decoded. */
  | 'bad-encoding'
  /** %2F or %5C inside a segment: a separator smuggled past the split. */
  | 'encoded-separator'
  /** NUL (%00) anywhere: C code below PHP would cut the path there. */
  | 'nul'
  /** A backslash, raw: a separator on other systems, never in a Moodle URL. */
  | 'backslash'
  /** A "." or ".." segment, raw or encoded (%2e%2e). */
  | 'dot-segment';

export type DecodedUrlPath =
  | {
      ok: true;
      /** Decoded segments; empty segments ("//") are dropped, as nginx merges slashes. */
      segments: string[];
      /** The target's path ended with "/". */
      trailingSlash: boolean;
      /** The raw query after "?", without it ('' when none). */
      query: string;
    }
  | { ok: false; reason: UrlPathRefusal };

const HEX_PCT_SEPARATOR = /%(?:2f|5c)/i;

export function decodeUrlPath(target: string): DecodedUrlPath {
  const q = target.indexOf('?');
  const rawPath = q < 0 ? target : target.slice(0, q);
  const query = q < 0 ? '' : target.slice(q + 1);
  if (!rawPath.startsWith('/')) return { ok: false, reason: 'not-origin-form' };
  const segments: string[] = [];
  for (const raw of rawPath.split('/')) {
    if (raw.includes('\\')) return { ok: false, reason: 'backslash' };
    if (HEX_PCT_SEPARATOR.test(raw)) return { ok: false, reason: 'encoded-separator' };
    let seg: string;
    try {
      seg = decodeURIComponent(raw);
    } catch {
      return { ok: false, reason: 'bad-encoding' };
    }
    if (seg.includes('\0')) return { ok: false, reason: 'nul' };
    if (seg === '') continue;
    if (seg === '.' || seg === '..') return { ok: false, reason: 'dot-segment' };
    segments.push(seg);
  }
  return { ok: true, segments, trailingSlash: rawPath.endsWith('/'), query };
}

/**
 * True when a segment is a dot-file or dot-folder (".git", ".env", ".htaccess"). "/.well-known/" stays
 * reachable (RFC 8615), as in Moodle's nginx guide.
 */
export function hasDotFile(segments: readonly string[]): boolean {
  return segments.some((s, i) => s.startsWith('.') && !(i === 0 && s === '.well-known'));
}

/**
 * The first rule that `path` ("/" + decoded segments) contains, compared case-insensitively, else undefined.
 * Rules are plain substrings, as the alternatives of the regex in Moodle's nginx guide are
 * ("/vendor/", "composer.json", ".lock", ...).
 */
export function deniedBy(path: string, rules: readonly string[]): string | undefined {
  const p = path.toLowerCase();
  return rules.find((r) => r !== '' && p.includes(r.toLowerCase()));
}
