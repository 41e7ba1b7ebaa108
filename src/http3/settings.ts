// HTTP/3 SETTINGS (RFC 9114 §7.2.4): identifiers, validation of a received SETTINGS payload and encoding of ours.

import { H3_FRAME_ERROR, H3_SETTINGS_ERROR, connectionError } from './errors.ts';
import { VARINT_NEED_MORE, readVarint, varintLength, varintSize, writeVarint } from './varint.ts';

export const SETTINGS_QPACK_MAX_TABLE_CAPACITY = 0x1; // RFC 9204 §5
export const SETTINGS_MAX_FIELD_SECTION_SIZE = 0x6; // RFC 9114 §7.2.4.1
export const SETTINGS_QPACK_BLOCKED_STREAMS = 0x7; // RFC 9204 §5
export const SETTINGS_ENABLE_CONNECT_PROTOCOL = 0x8; // RFC 9220 §3
export const SETTINGS_H3_DATAGRAM = 0x33; // RFC 9297 §2.1.1

/** Identifier/value pairs in wire order, unknown (GREASE) identifiers included. */
export type SettingsList = Array<[number, number]>;

/** The settings this implementation understands, with RFC defaults for absent ones. */
export interface PeerSettings {
  qpackMaxTableCapacity: number;
  /** Infinity when the peer sets no limit (RFC 9114 §7.2.4.1: the default is unlimited). */
  maxFieldSectionSize: number;
  qpackBlockedStreams: number;
  enableConnectProtocol: boolean;
  h3Datagram: boolean;
}

export function defaultPeerSettings(): PeerSettings {
  return {
    qpackMaxTableCapacity: 0,
    maxFieldSectionSize: Infinity,
    qpackBlockedStreams: 0,
    enableConnectProtocol: false,
    h3Datagram: false,
  };
}

/**
 * Parses and validates a SETTINGS payload. RFC 9114 §7.2.4: a repeated identifier and the HTTP/2-only identifiers
 * 0x2-0x5 are H3_SETTINGS_ERROR; §7.1: a payload that ends inside a varint is H3_FRAME_ERROR.
 */
export function parseSettings(payload: Uint8Array): SettingsList {
  const out: SettingsList = [];
  let pos = 0;
  while (pos < payload.length) {
    const id = readVarint(payload, pos);
    if (id === VARINT_NEED_MORE) throw connectionError(H3_FRAME_ERROR, 'SETTINGS: truncated identifier');
    pos += varintLength(payload[pos]);
    const value = readVarint(payload, pos);
    if (value === VARINT_NEED_MORE) throw connectionError(H3_FRAME_ERROR, 'SETTINGS: truncated value');
    pos += varintLength(payload[pos]);
    if (id >= 0x2 && id <= 0x5) {
      throw connectionError(H3_SETTINGS_ERROR, `SETTINGS: HTTP/2 setting 0x${id.toString(16)} is not allowed`);
    }
    // Identifiers above 2^53 lose precision as doubles; they are GREASE values, so only exact ones are compared.
    if (id <= Number.MAX_SAFE_INTEGER) {
      for (let i = 0; i < out.length; i++) {
        if (out[i][0] === id) {
          throw connectionError(H3_SETTINGS_ERROR, `SETTINGS: duplicate setting 0x${id.toString(16)}`);
        }
      }
    }
    if ((id === SETTINGS_ENABLE_CONNECT_PROTOCOL || id === SETTINGS_H3_DATAGRAM) && value > 1) {
      throw connectionError(H3_SETTINGS_ERROR, `SETTINGS: 0x${id.toString(16)} must be 0 or 1`);
    }
    out.push([id, value]);
  }
  return out;
}

/** Folds a validated SettingsList into the values we act on. */
export function toPeerSettings(list: SettingsList): PeerSettings {
  const s = defaultPeerSettings();
  for (const [id, value] of list) {
    if (id === SETTINGS_QPACK_MAX_TABLE_CAPACITY) s.qpackMaxTableCapacity = value;
    else if (id === SETTINGS_MAX_FIELD_SECTION_SIZE) s.maxFieldSectionSize = value;
    else if (id === SETTINGS_QPACK_BLOCKED_STREAMS) s.qpackBlockedStreams = value;
    else if (id === SETTINGS_ENABLE_CONNECT_PROTOCOL) s.enableConnectProtocol = value === 1;
    else if (id === SETTINGS_H3_DATAGRAM) s.h3Datagram = value === 1;
  }
  return s;
}

/** Encodes a SETTINGS payload (without the frame header). */
export function encodeSettingsPayload(list: SettingsList): Uint8Array {
  let size = 0;
  for (const [id, value] of list) size += varintSize(id) + varintSize(value);
  const out = new Uint8Array(size);
  let pos = 0;
  for (const [id, value] of list) {
    pos = writeVarint(out, pos, id);
    pos = writeVarint(out, pos, value);
  }
  return out;
}
