// X-Accel-Redirect from PHP (Moodle's $CFG->xsendfile = 'X-Accel-Redirect' with $CFG->xsendfilealiases mapping
// the dataroot to moodle.xAccelRedirectPrefix): the header names a file under the prefix, which quiclb streams
// from moodle.dataRoot in place of PHP's (empty) body, keeping PHP's other headers.
//
// Moodle writes the aliased file path as is, not percent-encoded, and nginx's internal redirect does not decode
// it either; so each segment is encoded here before openSafeFile decodes it once: a literal "%" in a file name
// stays a "%", and ".." or NUL are still refused there.

/**
 * The origin-form path (relative to moodle.dataRoot) for an X-Accel-Redirect value, or undefined when the value
 * does not start with `prefix` (answer 404: quiclb has no other internal locations).
 */
export function xAccelFilePath(value: string, prefix: string): string | undefined {
  const v = value.trim();
  if (!v.startsWith(prefix)) return undefined;
  const rest = v.slice(prefix.length);
  return `/${rest.split('/').map(encodeURIComponent).join('/')}`;
}

/** Whether a response carries X-Accel-Redirect (header names lowercase, as in HeaderList). */
export function xAccelRedirectOf(headers: ReadonlyArray<readonly [string, string]>): string | undefined {
  return headers.find(([n]) => n === 'x-accel-redirect')?.[1];
}
