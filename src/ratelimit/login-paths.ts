// Which requests take from the stricter login bucket: an exact path (query string ignored) and, when the
// entry lists methods, one of them. Moodle's defaults are the login form's POST (GET only shows the form)
// and the mobile app's token endpoint, which takes credentials by GET or POST.
import type { LoginPathConfig } from '../config/types.ts';

export class LoginPaths {
  /** path -> methods (case-sensitive, RFC 9110 §9.1), or null for any method. */
  private readonly byPath = new Map<string, ReadonlySet<string> | null>();

  constructor(entries: readonly LoginPathConfig[]) {
    for (const e of entries) {
      const prev = this.byPath.get(e.path);
      if (e.methods === undefined || prev === null) {
        this.byPath.set(e.path, null);
      } else {
        this.byPath.set(e.path, new Set([...(prev ?? []), ...e.methods]));
      }
    }
  }

  get size(): number {
    return this.byPath.size;
  }

  /** `target` is the request's origin-form path, query string included or not. */
  matches(method: string, target: string): boolean {
    if (this.byPath.size === 0) return false;
    const q = target.indexOf('?');
    const methods = this.byPath.get(q < 0 ? target : target.slice(0, q));
    return methods === null || (methods !== undefined && methods.has(method));
  }
}
