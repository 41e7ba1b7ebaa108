// Self-signed certificate for first start and tests, generated with the `selfsigned` package
// (ECDSA P-256, SAN localhost/127.0.0.1/::1) and kept in the state directory so restarts reuse it.
import { mkdir, readFile, writeFile, stat } from 'node:fs/promises';
import { X509Certificate, createHash } from 'node:crypto';
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
