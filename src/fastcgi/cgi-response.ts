// The CGI response header block PHP writes at the start of STDOUT (RFC 3875 §6): header fields up to a blank
// line, then the body. Turns it into an HTTP status, a HeaderList with lowercase names, and the first body bytes.

import { STATUS_CODES } from 'node:http';
import type { HeaderList } from '../shared/http-types.ts';
import { FastCgiError } from './errors.ts';

export interface CgiHead {
  status: number;
  /** The reason phrase PHP gave (`Status: 404 Not Found`), else the standard one. */
  statusMessage: string;
  /** In PHP's order, `status` removed, names lowercase; repeated fields (Set-Cookie) stay separate entries. */
  headers: HeaderList;
  /** Bytes after the blank line that arrived with the header block (may be empty). */
  body: Buffer;
}

/** php-fpm's own bound on a header block is its output buffer; 64 KiB leaves room for long CSP headers. */
export const DEFAULT_MAX_CGI_HEADER_SIZE = 64 * 1024;

// RFC 9110 §5.1 token; field values: visible ASCII, obs-text, SP and HTAB (no CR, LF, NUL).
const TOKEN_RE = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const VALUE_RE = /^[\t\x20-\x7e\x80-\xff]*$/;
const STATUS_RE = /^([1-5]\d\d)(?:[ \t]+(.*))?$/;

function bad(message: string): FastCgiError {
  return new FastCgiError('QUICLB_FCGI_BAD_HEADER', `php-fpm sent a malformed CGI header block: ${message}`);
}

/** Index just past the blank line ending the header block (CRLF CRLF, or bare LF LF as some CGIs write), or -1. */
function headerEnd(buf: Buffer, from: number): number {
  for (let i = Math.max(0, from); i < buf.length; i++) {
    if (buf[i] !== 0x0a) continue;
    if (buf[i + 1] === 0x0a) return i + 2;
    if (buf[i + 1] === 0x0d && buf[i + 2] === 0x0a) return i + 3;
  }
  return -1;
}

/** Parses the header lines (the block without its blank line) into a CgiHead; throws QUICLB_FCGI_BAD_HEADER. */
export function parseCgiHeaderBlock(block: string, body: Buffer): CgiHead {
  const headers: HeaderList = [];
  let status: number | undefined;
  let statusMessage = '';
  let location = false;
  const lines = block.split('\n');
  for (let raw of lines) {
    if (raw.endsWith('\r')) raw = raw.slice(0, -1);
    if (raw === '') continue;
    // RFC 9112 §5.2: obs-fold is obsolete; a continuation line is rejected rather than guessed at.
    if (raw[0] === ' ' || raw[0] === '\t') throw bad('folded header line');
    const colon = raw.indexOf(':');
    if (colon <= 0) throw bad(`line without a field name: ${JSON.stringify(raw.slice(0, 60))}`);
    const name = raw.slice(0, colon).toLowerCase();
    const value = raw.slice(colon + 1).trim();
    if (!TOKEN_RE.test(name)) throw bad(`invalid field name ${JSON.stringify(name.slice(0, 60))}`);
    if (!VALUE_RE.test(value)) throw bad(`invalid characters in the value of ${name}`);
    if (name === 'status') {
      // RFC 3875 §6.3.3: Status = "Status:" status-code SP reason-phrase.
      const m = STATUS_RE.exec(value);
      if (m === null || status !== undefined) throw bad(`invalid or repeated Status ${JSON.stringify(value.slice(0, 60))}`);
      status = Number(m[1]);
      statusMessage = m[2] ?? '';
      continue;
    }
    if (name === 'location') location = true;
    headers.push([name, value]);
  }
  // RFC 3875 §6.2.3: a redirect without a Status is a 302 (PHP normally adds the Status itself).
  const final = status ?? (location ? 302 : 200);
  // A final response cannot be 1xx (RFC 9110 §15.2); interim responses have no CGI form.
  if (final < 200) throw bad(`Status ${final} is not a final status`);
  return { status: final, statusMessage: statusMessage || (STATUS_CODES[final] ?? ''), headers, body };
}

/** Collects STDOUT bytes until the header block is complete, bounded by maxHeaderSize. */
export class CgiHeadParser {
  private readonly maxHeaderSize: number;
  private buffered: Buffer = Buffer.alloc(0);

  constructor(maxHeaderSize = DEFAULT_MAX_CGI_HEADER_SIZE) {
    this.maxHeaderSize = maxHeaderSize;
  }

  /** Returns the head once the blank line arrived (call no more after that), else undefined. */
  push(chunk: Buffer): CgiHead | undefined {
    const searchFrom = this.buffered.length - 2;
    this.buffered = this.buffered.length === 0 ? Buffer.from(chunk) : Buffer.concat([this.buffered, chunk]);
    const end = headerEnd(this.buffered, searchFrom);
    if (end < 0) {
      if (this.buffered.length > this.maxHeaderSize) throw bad(`no end of the header block within ${this.maxHeaderSize} bytes`);
      return undefined;
    }
    if (end > this.maxHeaderSize + 2) throw bad(`header block larger than ${this.maxHeaderSize} bytes`);
    const head = parseCgiHeaderBlock(this.buffered.toString('latin1', 0, end), this.buffered.subarray(end));
    this.buffered = Buffer.alloc(0);
    return head;
  }

  /** STDOUT ended: a missing header block is an error. */
  finish(): never {
    throw bad(this.buffered.length === 0 ? 'empty STDOUT' : 'STDOUT ended inside the header block');
  }
}
