// QUIC's version-independent header (RFC 8999 §5) plus the one version-specific field the primary
// needs, the Initial token of QUIC v1 (RFC 9000 §17.2.2). Sans-IO and allocation-free: it fills a
// caller-owned object with offsets into the datagram, so the primary's per-datagram path stays cheap.
// The primary never decrypts: nothing after the token length is read.
import { CID_LEN } from './cid.ts';

export const QUIC_V1 = 0x00000001;

/** Long-header packet types of QUIC v1 (RFC 9000 §17.2, Table 5). */
export const LONG_INITIAL = 0;
export const LONG_0RTT = 1;
export const LONG_HANDSHAKE = 2;
export const LONG_RETRY = 3;

/** RFC 8999 §5.1: long-header CIDs may be up to 255 octets in versions other than v1. */
const MAX_INVARIANT_CID_LEN = 255;

export interface ParsedHeader {
  long: boolean;
  version: number;
  /** QUIC v1 long packet type (LONG_*); -1 for short headers and other versions. */
  type: number;
  dcidOff: number;
  dcidLen: number;
  scidOff: number;
  scidLen: number;
  /** Initial token (QUIC v1 only); tokenLen 0 when absent. */
  tokenOff: number;
  tokenLen: number;
}

export function newParsedHeader(): ParsedHeader {
  return { long: false, version: 0, type: -1, dcidOff: 0, dcidLen: 0, scidOff: 0, scidLen: 0, tokenOff: 0, tokenLen: 0 };
}

/**
 * Parses `buf[0..len)` into `out`. Short headers carry no DCID length (RFC 8999 §5.2): every CID quiclb
 * issues is CID_LEN octets, so that is the length used. Returns false for anything unparsable.
 */
export function parseHeader(buf: Uint8Array, len: number, out: ParsedHeader): boolean {
  if (len < 1) return false;
  const first = buf[0];
  out.type = -1;
  out.tokenOff = 0;
  out.tokenLen = 0;
  out.scidOff = 0;
  out.scidLen = 0;
  if ((first & 0x80) === 0) {
    if (len < 1 + CID_LEN) return false;
    out.long = false;
    out.version = 0;
    out.dcidOff = 1;
    out.dcidLen = CID_LEN;
    return true;
  }
  // first octet, 32-bit version, DCID length + DCID, SCID length + SCID.
  if (len < 7) return false;
  out.long = true;
  out.version = ((buf[1] << 24) | (buf[2] << 16) | (buf[3] << 8) | buf[4]) >>> 0;
  let p = 5;
  const dcidLen = buf[p++];
  if (dcidLen > MAX_INVARIANT_CID_LEN || p + dcidLen >= len) return false;
  out.dcidOff = p;
  out.dcidLen = dcidLen;
  p += dcidLen;
  const scidLen = buf[p++];
  if (p + scidLen > len) return false;
  out.scidOff = p;
  out.scidLen = scidLen;
  p += scidLen;
  if (out.version !== QUIC_V1) return true;
  // RFC 9000 §17.2: v1 limits CIDs to 20 octets; longer ones make the packet invalid.
  if (dcidLen > 20 || scidLen > 20) return false;
  out.type = (first & 0x30) >> 4;
  if (out.type !== LONG_INITIAL) return true;
  const tokenLen = readVarint(buf, p, len);
  if (tokenLen < 0) return false;
  p += varintSize(buf[p]);
  if (p + tokenLen > len) return false;
  out.tokenOff = p;
  out.tokenLen = tokenLen;
  return true;
}

function varintSize(firstOctet: number): number {
  return 1 << (firstOctet >> 6);
}

/** RFC 9000 §16 variable-length integer at `p`; -1 when truncated or above 2^53 (never a sane length). */
export function readVarint(buf: Uint8Array, p: number, len: number): number {
  if (p >= len) return -1;
  const size = varintSize(buf[p]);
  if (p + size > len) return -1;
  let v = buf[p] & 0x3f;
  for (let i = 1; i < size; i++) v = v * 256 + buf[p + i];
  return v > Number.MAX_SAFE_INTEGER ? -1 : v;
}
