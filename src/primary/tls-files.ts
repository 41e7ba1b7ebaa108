// The certificate and key every shard will load, settled before anything listens: the configured pair, or
// the self-signed one in stateDir. Garbage there must stop quiclb at once with the field named, not leave a
// primary that logs "quiclb ready" while every shard crashes on the files and is restarted forever.
import type { Config } from '../config/types.ts';
import { ConfigError } from '../config/errors.ts';
import type { Logger } from '../shared/logger.ts';
import { CERT_WARN_DAYS, certificateValidity, ensureSelfSigned, loadTlsMaterial, type TlsMaterial } from '../shared/tls-material.ts';

/** Throws ConfigError (`tls.certFile: ...` / `tls.keyFile: ...`) when the pair cannot be served. */
export async function prepareTlsFiles(config: Config, logger: Logger, now = Date.now()): Promise<TlsMaterial> {
  let { certFile, keyFile } = config.tls;
  if (!certFile || !keyFile) {
    const generated = await ensureSelfSigned(config.tls.stateDir);
    certFile = generated.certFile;
    keyFile = generated.keyFile;
    logger.warn({ certFile }, 'tls.certFile/keyFile not set: serving a SELF-SIGNED certificate (browsers will warn); configure a real one for production');
  }
  let material: TlsMaterial;
  try {
    material = loadTlsMaterial(certFile, keyFile);
  } catch (err) {
    const e = err as { code?: string; field?: string; detail?: string };
    if (e.code === 'QUICLB_TLS' && e.field && e.detail) throw ConfigError.at(e.field, e.detail);
    throw err;
  }
  for (const w of material.warnings) logger.warn({ certFile }, w);
  const leaf = material.chain[0];
  const validity = certificateValidity(leaf, now);
  const subject = leaf.subject.replaceAll('\n', ', ');
  if (validity.state === 'expired') {
    logger.warn({ certFile, subject, validTo: leaf.validTo }, `tls.certFile: the certificate EXPIRED ${validity.daysAgo} day(s) ago; clients will refuse it: renew it`);
  } else if (validity.state === 'not-yet-valid') {
    logger.warn({ certFile, subject, validFrom: leaf.validFrom }, 'tls.certFile: the certificate is not valid yet; check the host clock (timedatectl)');
  } else if (validity.daysLeft < CERT_WARN_DAYS) {
    logger.warn({ certFile, subject, validTo: leaf.validTo }, `tls.certFile: the certificate expires in ${validity.daysLeft} day(s): renew it`);
  }
  return material;
}
