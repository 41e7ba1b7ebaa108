// Environment overrides, named as the MoosicBox load balancer names them. They are applied to the raw
// JSON before validation, so a bad value that parses here is still reported under its field path;
// a value that cannot be parsed at all is reported under the env var name.

import { ConfigError, describeValue } from './errors.ts';

export type Env = Record<string, string | undefined>;

const BIND_EXPECTED = 'host, host:port or [v6]:port';
const URL_EXPECTED = 'URL like http://host:port';

/** `host`, `host:port`, `[v6]:port`, `[v6]` or a bare IPv6 literal. */
export function parseBindAddress(value: string, name = 'BIND_ADDRESS'): { host: string; port?: number } {
  const bad = () => ConfigError.at(name, `expected ${BIND_EXPECTED}, got ${describeValue(value)}`);
  let host: string;
  let portText: string | undefined;
  const bracketed = /^\[([^\]]+)\](?::(.*))?$/.exec(value);
  if (bracketed !== null) {
    host = bracketed[1];
    portText = bracketed[2];
  } else if ((value.match(/:/g) ?? []).length > 1) {
    host = value; // bare IPv6 literal: no port can be told apart from the address
  } else {
    const colon = value.indexOf(':');
    host = colon === -1 ? value : value.slice(0, colon);
    portText = colon === -1 ? undefined : value.slice(colon + 1);
  }
  if (host === '' || /\s/.test(host)) throw bad();
  if (portText === undefined) return { host };
  const port = /^\d{1,5}$/.test(portText) ? Number(portText) : NaN;
  if (!(port >= 1 && port <= 65535)) throw bad();
  return { host, port };
}

/** Comma-separated http(s) URLs -> backend entries with ids backend-1, backend-2, ... */
export function parseBackendServers(value: string, name = 'BACKEND_SERVERS'): { id: string; host: string; port: number }[] {
  return value.split(',').map((item, i) => {
    const text = item.trim();
    const bad = () => ConfigError.at(`${name}[${i}]`, `expected ${URL_EXPECTED}, got ${describeValue(text)}`);
    let url: URL;
    try {
      url = new URL(text);
    } catch {
      throw bad();
    }
    const httpLike = url.protocol === 'http:' || url.protocol === 'https:';
    // A backend is a host and a port; a path, query or credentials would be silently dropped.
    const extra = (url.pathname !== '/' && url.pathname !== '') || url.search !== '' || url.hash !== '' || url.username !== '';
    if (!httpLike || url.hostname === '' || extra) throw bad();
    const port = url.port !== '' ? Number(url.port) : url.protocol === 'https:' ? 443 : 80;
    const host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
    return { id: `backend-${i + 1}`, host, port };
  });
}

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Sets raw[section][key], creating the section; a non-object section is left for validation to report. */
function setIn(raw: Obj, section: string, key: string, value: unknown): void {
  if (raw[section] === undefined) raw[section] = {};
  const target = raw[section];
  if (isObj(target)) target[key] = value;
}

/** A copy of `raw` with the overrides from `env` applied. Empty variables count as unset. */
export function applyEnvOverrides(raw: unknown, env: Env): unknown {
  if (!isObj(raw)) return raw;
  const out = structuredClone(raw);
  const get = (name: string): string | undefined => {
    const v = env[name];
    return v === undefined || v.trim() === '' ? undefined : v.trim();
  };

  const bind = get('BIND_ADDRESS');
  if (bind !== undefined) {
    const { host, port } = parseBindAddress(bind);
    setIn(out, 'server', 'bindAddress', host);
    if (port !== undefined) setIn(out, 'server', 'httpPort', port);
  }
  const backends = get('BACKEND_SERVERS');
  if (backends !== undefined) setIn(out, 'loadBalancer', 'backendServers', parseBackendServers(backends));
  const cert = get('SSL_CERT_PATH');
  if (cert !== undefined) setIn(out, 'tls', 'certFile', cert);
  const key = get('SSL_KEY_PATH');
  if (key !== undefined) setIn(out, 'tls', 'keyFile', key);
  return out;
}
