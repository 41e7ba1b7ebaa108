// Typed configuration errors. Every message a user sees starts with the field path (or the env var /
// file name), then says what was expected and what was got, so a typo is found without reading code.
// Threads compare `code`, not instanceof (class identity does not survive postMessage).

export const CONFIG_ERROR_CODE = 'QUICLB_CONFIG';

export interface ConfigIssue {
  /** Field path like `loadBalancer.backendServers[1].port`, an env var name, or a file name. */
  path: string;
  /** Full message, path included. */
  message: string;
}

export class ConfigError extends Error {
  readonly code = CONFIG_ERROR_CODE;
  readonly path: string;
  /** Every problem found; `message` is the first one's. */
  readonly issues: readonly ConfigIssue[];

  constructor(issues: readonly ConfigIssue[]) {
    const first = issues[0] ?? { path: 'config', message: 'config: invalid configuration' };
    super(first.message);
    this.name = 'ConfigError';
    this.path = first.path;
    this.issues = issues.length > 0 ? issues : [first];
  }

  /** One problem: `${path}: ${detail}`. */
  static at(path: string, detail: string): ConfigError {
    return new ConfigError([{ path, message: `${path}: ${detail}` }]);
  }
}

export function isConfigError(err: unknown): err is ConfigError {
  return typeof err === 'object' && err !== null && (err as { code?: unknown }).code === CONFIG_ERROR_CODE;
}

/** `['loadBalancer', 'backendServers', 1, 'port']` -> `loadBalancer.backendServers[1].port`. */
export function formatPath(segments: readonly PropertyKey[]): string {
  let out = '';
  for (const seg of segments) {
    if (typeof seg === 'number') out += `[${seg}]`;
    else out += out === '' ? String(seg) : `.${String(seg)}`;
  }
  return out === '' ? 'config' : out;
}

const MAX_GOT_CHARS = 80;

/** What was got, JSON-quoted (`"80x"`, `0`, `null`), `nothing` when the field is absent. */
export function describeValue(value: unknown): string {
  if (value === undefined) return 'nothing';
  let text: string;
  try {
    text = JSON.stringify(value) ?? String(value);
  } catch {
    text = String(value);
  }
  return text.length > MAX_GOT_CHARS ? `${text.slice(0, MAX_GOT_CHARS - 3)}...` : text;
}

/** `expected ${expected}, got ${value}` issue at `path`. */
export function expectedIssue(path: string, expected: string, value: unknown): ConfigIssue {
  return { path, message: `${path}: expected ${expected}, got ${describeValue(value)}` };
}
