// TLS material: the self-signed certificate for first start and tests, generated with the `selfsigned`
// package (ECDSA P-256, SAN localhost/127.0.0.1/::1) and kept in the state directory so restarts reuse it;
// and the check of configured certificate/key files the primary runs before anything listens.
import { mkdir, readFile, writeFile, stat } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { X509Certificate, createHash, createPrivateKey, type KeyObject } from 'node:crypto';
import path from 'node:path';
import selfsigned from 'selfsigned';

export interface TlsFiles {
  certFile: string;
  keyFile: string;
  generated: boolean;
}

const VALID_DAYS = 365;

async function exists(file: string): Promise<boolean> {
  try {
    await stat(file);
    return true;
  } catch {
    return false;
  }
}

/** Returns cert/key paths in stateDir, generating a fresh pair when absent or expired. */
export async function ensureSelfSigned(stateDir: string, days = VALID_DAYS): Promise<TlsFiles> {
  const certFile = path.resolve(stateDir, 'selfsigned-cert.pem');
  const keyFile = path.resolve(stateDir, 'selfsigned-key.pem');
  if ((await exists(certFile)) && (await exists(keyFile))) {
    const cert = new X509Certificate(await readFile(certFile));
    if (new Date(cert.validTo).getTime() > Date.now() + 24 * 3600_000) return { certFile, keyFile, generated: false };
  }
  await mkdir(stateDir, { recursive: true, mode: 0o700 });
  const notBefore = new Date(Date.now() - 3600_000);
  const pems = await selfsigned.generate([{ name: 'commonName', value: 'localhost' }], {
    keyType: 'ec',
    algorithm: 'sha256',
    notBeforeDate: notBefore,
    notAfterDate: new Date(notBefore.getTime() + days * 86400_000),
    extensions: [
      { name: 'basicConstraints', cA: false },
      { name: 'keyUsage', digitalSignature: true, keyEncipherment: true },
      { name: 'extKeyUsage', serverAuth: true },
      {
        name: 'subjectAltName',
        altNames: [
          { type: 2, value: 'localhost' },
          { type: 7, ip: '127.0.0.1' },
          { type: 7, ip: '::1' },
        ],
      },
    ],
  });
  await writeFile(keyFile, pems.private, { mode: 0o600 });
  await writeFile(certFile, pems.cert, { mode: 0o644 });
  return { certFile, keyFile, generated: true };
}

/** base64 sha256 of the certificate's SubjectPublicKeyInfo (Chromium's --ignore-certificate-errors-spki-list). */
export function spkiHash(certPem: string | Buffer): string {
  const cert = new X509Certificate(certPem);
  const spki = cert.publicKey.export({ type: 'spki', format: 'der' });
  return createHash('sha256').update(spki).digest('base64');
}

// ---- validating configured TLS material -----------------------------------------------------------

/** `quiclb start` and `quiclb doctor` warn this long before the certificate expires. */
export const CERT_WARN_DAYS = 14;

export type TlsField = 'tls.certFile' | 'tls.keyFile';

/** A certificate or key quiclb cannot serve with; `field` names the config field to fix. */
export class TlsMaterialError extends Error {
  readonly code = 'QUICLB_TLS';
  readonly field: TlsField;
  readonly detail: string;

  constructor(field: TlsField, detail: string) {
    super(`${field}: ${detail}`);
    this.name = 'TlsMaterialError';
    this.field = field;
    this.detail = detail;
  }
}

export interface TlsMaterial {
  certFile: string;
  keyFile: string;
  /** Every certificate of the PEM chain, leaf first. */
  chain: X509Certificate[];
  /** Findings that do not stop quiclb (a chain out of order). */
  warnings: string[];
}

const PEM_CERT_RE = /-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g;

function readOrThrow(field: TlsField, file: string): Buffer {
  try {
    return readFileSync(file);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'EIO';
    throw new TlsMaterialError(field, `cannot read ${file} (${code})`);
  }
}

function opensslReason(err: unknown): string {
  // "error:1E08010C:DECODER routines::unsupported" -> "unsupported"
  const msg = String((err as Error).message ?? err);
  return msg.replace(/^error:[0-9A-F]+:[^:]*::?/, '');
}

/**
 * Parses the configured certificate chain and private key the way the shards will load them (PEM files,
 * BoringSSL in quiche and OpenSSL in node:tls) and checks that the key belongs to the leaf certificate.
 * Throws TlsMaterialError naming the field; validity dates are left to the caller (certificateValidity).
 */
export function loadTlsMaterial(certFile: string, keyFile: string): TlsMaterial {
  const certText = readOrThrow('tls.certFile', certFile).toString('latin1');
  const blocks = certText.match(PEM_CERT_RE) ?? [];
  if (blocks.length === 0) {
    throw new TlsMaterialError('tls.certFile', `${certFile} holds no PEM certificate (expected "-----BEGIN CERTIFICATE-----" blocks)`);
  }
  const chain = blocks.map((pem, i) => {
    try {
      return new X509Certificate(pem);
    } catch (err) {
      const which = blocks.length > 1 ? `certificate ${i + 1} of ${blocks.length}` : 'the certificate';
      throw new TlsMaterialError('tls.certFile', `${which} in ${certFile} cannot be parsed (${opensslReason(err)})`);
    }
  });
  const keyPem = readOrThrow('tls.keyFile', keyFile);
  const keyText = keyPem.toString('latin1');
  if (keyText.includes('-----BEGIN ENCRYPTED PRIVATE KEY-----') || keyText.includes('Proc-Type: 4,ENCRYPTED')) {
    throw new TlsMaterialError('tls.keyFile', `${keyFile} is encrypted with a passphrase; quiclb needs an unencrypted PEM key (openssl pkey -in KEY -out PLAIN)`);
  }
  let key: KeyObject;
  try {
    key = createPrivateKey({ key: keyPem, format: 'pem' });
  } catch (err) {
    throw new TlsMaterialError('tls.keyFile', `${keyFile} is not a PEM private key (${opensslReason(err)})`);
  }
  if (!chain[0].checkPrivateKey(key)) {
    throw new TlsMaterialError('tls.keyFile', `${keyFile} does not match the certificate in ${certFile} (use the key the certificate was issued for)`);
  }
  const warnings: string[] = [];
  for (let i = 1; i < chain.length; i++) {
    if (!chain[i - 1].checkIssued(chain[i])) {
      warnings.push(`certificate ${i + 1} of ${chain.length} in ${certFile} did not issue certificate ${i}: clients may not build the chain (order it leaf first, then each issuer)`);
    }
  }
  return { certFile, keyFile, chain, warnings };
}

export type Validity = { state: 'valid'; daysLeft: number } | { state: 'expired'; daysAgo: number } | { state: 'not-yet-valid'; from: Date };

/** Where `now` falls in the certificate's validity period. */
export function certificateValidity(cert: X509Certificate, now = Date.now()): Validity {
  const from = new Date(cert.validFrom).getTime();
  const to = new Date(cert.validTo).getTime();
  if (to <= now) return { state: 'expired', daysAgo: Math.floor((now - to) / 86_400_000) };
  if (from > now) return { state: 'not-yet-valid', from: new Date(from) };
  return { state: 'valid', daysLeft: Math.floor((to - now) / 86_400_000) };
}
