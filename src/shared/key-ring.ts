// The key ring: one small secret file that seeds every key quiclb must keep across a restart or share with a
// second instance: the Retry token key (a token minted before a restart still validates after it), the
// stateless reset key (a restarted quiclb resets its predecessor's connections, RFC 9000 §10.3) and the TLS
// session ticket keys of the shards (a browser's ticket stays valid across shards and restarts, RFC 8446 §4.6.1).
//
// Format: text, one base64 key (at least 32 octets) per line; `#` comments and blank lines are ignored. The
// first key is the current one; the ones after it are older keys still accepted where a key is checked
// (Retry tokens, and stateless resets of connections made under them), so a rotation is: put a new key first,
// keep the old one below it for a while, and reload (every reload reads the file again, src/primary/keys.ts;
// session tickets follow the first key only). Each purpose gets its own subkey, HKDF-SHA256(key, salt
// "quiclb key ring v1", info = purpose), so no two uses share a key.
import { hkdfSync, randomBytes } from 'node:crypto';
import { linkSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';

export const KEY_RING_MIN_KEY = 32;
const SALT = 'quiclb key ring v1';

export type KeyPurpose = 'quic retry token' | 'quic stateless reset' | 'tls session tickets' | 'quic session tickets';

/** Octets each purpose needs: Node's and BoringSSL's ticket keys are 48 (name, HMAC secret, AES key). */
const PURPOSE_LEN: Record<KeyPurpose, number> = {
  'quic retry token': 32,
  'quic stateless reset': 32,
  'tls session tickets': 48,
  'quic session tickets': 48,
};

/** Something wrong with the key ring file; the message says what to do. */
export class KeyRingError extends Error {
  readonly code = 'QUICLB_KEY_RING';
  constructor(message: string) {
    super(message);
    this.name = 'KeyRingError';
  }
}

export class KeyRing {
  /** Newest first. */
  readonly keys: readonly Buffer[];

  constructor(keys: readonly Buffer[]) {
    if (keys.length === 0) throw new KeyRingError('holds no key');
    for (const k of keys) if (k.length < KEY_RING_MIN_KEY) throw new KeyRingError(`holds a key of ${k.length} octets; each needs at least ${KEY_RING_MIN_KEY}`);
    this.keys = keys;
  }

  /** The current key's subkey for `purpose`. */
  derive(purpose: KeyPurpose): Buffer {
    return deriveFrom(this.keys[0], purpose);
  }

  /** The subkey for `purpose` of every key, newest first (for checking what older keys made). */
  deriveAll(purpose: KeyPurpose): Buffer[] {
    return this.keys.map((k) => deriveFrom(k, purpose));
  }

  static generate(): KeyRing {
    return new KeyRing([randomBytes(KEY_RING_MIN_KEY)]);
  }
}

function deriveFrom(key: Buffer, purpose: KeyPurpose): Buffer {
  return Buffer.from(hkdfSync('sha256', key, SALT, purpose, PURPOSE_LEN[purpose]));
}

/** Parses the file's text; throws KeyRingError saying which line is wrong. */
export function parseKeyRing(text: string): KeyRing {
  const keys: Buffer[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i].trim();
    if (line === '' || line.startsWith('#')) continue;
    if (!/^[A-Za-z0-9+/]+={0,2}$/.test(line)) throw new KeyRingError(`line ${i + 1} is not a base64 key`);
    const key = Buffer.from(line, 'base64');
    if (key.length < KEY_RING_MIN_KEY) throw new KeyRingError(`line ${i + 1} holds a key of ${key.length} octets; each needs at least ${KEY_RING_MIN_KEY}`);
    keys.push(key);
  }
  if (keys.length === 0) throw new KeyRingError('holds no key (one base64 key of 32 or more octets per line)');
  return new KeyRing(keys);
}

export function formatKeyRing(ring: KeyRing): string {
  return [
    '# quiclb key ring: seeds the QUIC Retry token, stateless reset and TLS session ticket keys.',
    '# Keep it secret (mode 0600). The first key is current; keys below it are still accepted (rotation).',
    ...ring.keys.map((k) => k.toString('base64')),
    '',
  ].join('\n');
}

/**
 * Reads the key ring at `file`, or creates it (mode 0600, directory 0700) with one fresh key when it does not
 * exist. A file that group or others may read is refused: anyone who reads it can forge Retry tokens and
 * reset every connection.
 */
export function openKeyRing(file: string): { ring: KeyRing; created: boolean } {
  const abs = path.resolve(file);
  const existing = readKeyRing(abs);
  if (existing !== undefined) return { ring: existing, created: false };
  // Written whole under a temporary name and linked into place: link() fails if another quiclb created the
  // file meanwhile (then its key ring wins), and no reader ever sees a half-written file.
  const tmp = `${abs}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  let created = false;
  try {
    mkdirSync(path.dirname(abs), { recursive: true, mode: 0o700 });
    writeFileSync(tmp, formatKeyRing(KeyRing.generate()), { mode: 0o600, flag: 'wx' });
    linkSync(tmp, abs);
    created = true;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== 'EEXIST') throw new KeyRingError(`cannot create ${abs} (${code ?? (err as Error).message}); make its directory writable for quiclb or point tls.keyRing elsewhere`);
  } finally {
    rmSync(tmp, { force: true });
  }
  const ring = readKeyRing(abs);
  if (ring === undefined) throw new KeyRingError(`${abs} vanished while quiclb was creating it`);
  return { ring, created };
}

/** Reads and checks the key ring without creating anything; undefined when the file does not exist. */
export function readKeyRing(file: string): KeyRing | undefined {
  const abs = path.resolve(file);
  let mode: number;
  let text: string;
  try {
    mode = statSync(abs).mode;
    text = readFileSync(abs, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return undefined;
    throw new KeyRingError(`cannot read ${abs} (${code ?? (err as Error).message})`);
  }
  if ((mode & 0o077) !== 0) {
    throw new KeyRingError(`${abs} may be read by group or others (mode ${(mode & 0o777).toString(8).padStart(4, '0')}); run chmod 600 ${abs}`);
  }
  try {
    return parseKeyRing(text);
  } catch (err) {
    throw new KeyRingError(`${abs} ${(err as Error).message}`);
  }
}

/** The default place: beside the generated certificate. */
export function defaultKeyRingFile(stateDir: string): string {
  return path.join(stateDir, 'keyring');
}
