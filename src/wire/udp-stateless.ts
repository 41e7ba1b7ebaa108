// The two packets the primary sends without any connection state, built here in TypeScript so that the
// primary thread never loads the quiche binding (its napi-rs runtime mixes up references between threads
// when more than one thread uses it; see docs/quiche.md):
//   - Version Negotiation (RFC 8999 §6, RFC 9000 §17.2.1),
//   - Retry with its integrity tag (RFC 9000 §17.2.5, RFC 9001 §5.8).
import { createCipheriv, randomBytes } from 'node:crypto';
import { QUIC_V1 } from './packet-header.ts';

/** QUIC versions quiclb speaks (quiche 0.18 in the shards: v1 only). */
export const SUPPORTED_VERSIONS: readonly number[] = [QUIC_V1];

export function isSupportedVersion(version: number): boolean {
  return version === QUIC_V1;
}

/** RFC 9001 §5.8: fixed key and nonce of the Retry integrity tag for QUIC v1. */
const RETRY_KEY = Buffer.from('be0c690b9f66575a1d766b54e368c84e', 'hex');
const RETRY_NONCE = Buffer.from('461599d35d632bf2239825bb', 'hex');

/**
 * Version Negotiation answering a client packet whose DCID/SCID are given: the client's SCID becomes our
 * DCID and vice versa (RFC 9000 §17.2.1). A reserved version (RFC 9000 §15, 0x?a?a?a?a) is listed first
 * so clients keep handling unknown versions.
 */
export function versionNegotiation(clientDcid: Uint8Array, clientScid: Uint8Array): Buffer {
  const grease = (randomBytes(4).readUInt32BE(0) & 0xf0f0f0f0) | 0x0a0a0a0a;
  const versions = [grease >>> 0, ...SUPPORTED_VERSIONS];
  const out = Buffer.allocUnsafe(1 + 4 + 1 + clientScid.length + 1 + clientDcid.length + 4 * versions.length);
  let p = 0;
  // RFC 8999 §6: the high bit set, the other seven bits unused (random).
  out[p++] = 0x80 | (randomBytes(1)[0] & 0x7f);
  out.writeUInt32BE(0, p);
  p += 4;
  out[p++] = clientScid.length;
  out.set(clientScid, p);
  p += clientScid.length;
  out[p++] = clientDcid.length;
  out.set(clientDcid, p);
  p += clientDcid.length;
  for (const v of versions) {
    out.writeUInt32BE(v, p);
    p += 4;
  }
  return out;
}

/**
 * A Retry packet (RFC 9000 §17.2.5): sent to the client's SCID, from `retryScid`, carrying `token`; the
 * integrity tag is AES-128-GCM over the Retry pseudo-packet, which starts with the original DCID.
 */
export function retryPacket(clientScid: Uint8Array, odcid: Uint8Array, retryScid: Uint8Array, token: Uint8Array, version = QUIC_V1): Buffer {
  const headLen = 1 + 4 + 1 + clientScid.length + 1 + retryScid.length + token.length;
  const pseudo = Buffer.allocUnsafe(1 + odcid.length + headLen);
  // Laid out as the pseudo-packet (ODCID first) so the header is written once.
  let p = 0;
  pseudo[p++] = odcid.length;
  pseudo.set(odcid, p);
  p += odcid.length;
  const start = p;
  // Long header, type Retry (0b11), four unused bits.
  pseudo[p++] = 0xf0 | (randomBytes(1)[0] & 0x0f);
  pseudo.writeUInt32BE(version, p);
  p += 4;
  pseudo[p++] = clientScid.length;
  pseudo.set(clientScid, p);
  p += clientScid.length;
  pseudo[p++] = retryScid.length;
  pseudo.set(retryScid, p);
  p += retryScid.length;
  pseudo.set(token, p);
  return Buffer.concat([pseudo.subarray(start), retryIntegrityTag(odcid, pseudo.subarray(start))]);
}

/** RFC 9001 §5.8: the 16-octet tag for `retry` (the Retry packet without its tag). */
export function retryIntegrityTag(odcid: Uint8Array, retry: Uint8Array): Buffer {
  const cipher = createCipheriv('aes-128-gcm', RETRY_KEY, RETRY_NONCE);
  cipher.setAAD(Buffer.concat([Buffer.from([odcid.length]), odcid, retry]));
  cipher.final();
  return cipher.getAuthTag();
}
