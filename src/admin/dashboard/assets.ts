// The dashboard's page and login page, read from the files beside this module once, when it loads, and
// assembled with their CSS and script inline: one self-contained document each, no CDN, no font, no
// second request. The Content-Security-Policy allows exactly that inline script and style by their
// SHA-256 (CSP Level 3 hash sources), so an injected <script> or style attribute would not run.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';

const read = (name: string): string => readFileSync(new URL(`./${name}`, import.meta.url), 'utf8');

const CSS = read('dashboard.css');
const SCRIPT = read('dashboard.js');
const PAGE = read('page.html');
const LOGIN = read('login.html');

const hash = (text: string): string => `'sha256-${createHash('sha256').update(text, 'utf8').digest('base64')}'`;

function csp(scriptHash: string | undefined): string {
  return [
    "default-src 'none'",
    scriptHash === undefined ? undefined : `script-src ${scriptHash}`,
    `style-src ${hash(CSS)}`,
    "connect-src 'self'",
    "img-src 'self' data:",
    "form-action 'self'",
    "frame-ancestors 'none'",
    "base-uri 'none'",
  ]
    .filter((d) => d !== undefined)
    .join('; ');
}

export const DASHBOARD_CSP = csp(hash(SCRIPT));
export const LOGIN_CSP = csp(undefined);

/** HTML text escaping for the few values put into the templates. */
export function escapeHtml(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&#39;');
}

/**
 * Substitutes {{NAME}} placeholders in one pass, so text inside a substituted value (the CSS or the
 * script) is never taken for a placeholder.
 */
function fill(template: string, values: Record<string, string>): string {
  return template.replace(/\{\{([A-Z]+)\}\}/g, (m, name: string) => values[name] ?? m);
}

/** The dashboard for a session whose CSRF token is `csrf`; `logout` adds the log-out button (token logins only). */
export function dashboardHtml(csrf: string, logout: boolean): string {
  const logoutForm = logout
    ? `<form method="post" action="/dashboard/logout"><input type="hidden" name="csrf" value="${escapeHtml(csrf)}"><button type="submit">Log out</button></form>`
    : '';
  return fill(PAGE, { CSRF: escapeHtml(csrf), STYLE: CSS, SCRIPT, LOGOUT: logoutForm });
}

export function loginHtml(message?: string): string {
  return fill(LOGIN, { STYLE: CSS, MESSAGE: message === undefined ? '' : `<p class="error" role="alert">${escapeHtml(message)}</p>` });
}
