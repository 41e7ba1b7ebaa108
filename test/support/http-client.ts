// Small client helpers for integration tests: undici requests with a per-client cookie jar, and curl.
import { request, Agent } from 'undici';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

export const execFileP = promisify(execFile);

/** Accepts the self-signed test certificate. */
export const insecureAgent = new Agent({ connect: { rejectUnauthorized: false }, keepAliveTimeout: 1000 });

export class CookieJar {
  private readonly cookies = new Map<string, string>();
  absorb(setCookie: string | string[] | undefined): void {
    for (const line of setCookie === undefined ? [] : Array.isArray(setCookie) ? setCookie : [setCookie]) {
      const [pair] = line.split(';');
      const eq = pair.indexOf('=');
      if (eq > 0) this.cookies.set(pair.slice(0, eq).trim(), pair.slice(eq + 1).trim());
    }
  }
  header(): string | undefined {
    if (this.cookies.size === 0) return undefined;
    return [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ');
  }
  get(name: string): string | undefined {
    return this.cookies.get(name);
  }
}

export interface JsonResponse<T> {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: T;
}

export async function getJson<T = any>(url: string, opts: { jar?: CookieJar; headers?: Record<string, string>; dispatcher?: Agent } = {}): Promise<JsonResponse<T>> {
  const headers: Record<string, string> = { ...opts.headers };
  const cookie = opts.jar?.header();
  if (cookie) headers.cookie = cookie;
  const res = await request(url, { headers, dispatcher: opts.dispatcher });
  opts.jar?.absorb(res.headers['set-cookie']);
  const text = await res.body.text();
  let body: any = text;
  try {
    body = JSON.parse(text);
  } catch {
    // not JSON: keep the text
  }
  return { status: res.statusCode, headers: res.headers, body };
}

export function countBy<T>(items: T[], key: (t: T) => string): Map<string, number> {
  const m = new Map<string, number>();
  for (const it of items) m.set(key(it), (m.get(key(it)) ?? 0) + 1);
  return m;
}
