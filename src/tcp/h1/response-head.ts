// HTTP/1.1 status lines and the Date field, built once and reused: the frontend writes a response head as
// one latin1 string (header values from backends arrive latin1-decoded, so bytes round-trip).
import { STATUS_CODES } from 'node:http';

const statusLines = new Map<number, string>();

/** "HTTP/1.1 200 OK\r\n" (reason phrases are optional, RFC 9112 §4; node's table when known). */
export function statusLine(status: number): string {
  let line = statusLines.get(status);
  if (line === undefined) {
    line = `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ''}\r\n`;
    if (status >= 100 && status <= 999) statusLines.set(status, line);
  }
  return line;
}

let dateSecond = 0;
let dateLine = '';

/** "date: <IMF-fixdate>\r\n", recomputed at most once a second (RFC 9110 §6.6.1: an origin must send Date; we add it when a backend did not). */
export function dateField(): string {
  const now = Date.now();
  const second = Math.floor(now / 1000);
  if (second !== dateSecond) {
    dateSecond = second;
    dateLine = `date: ${new Date(second * 1000).toUTCString()}\r\n`;
  }
  return dateLine;
}

/** A complete error answer written by the frontend itself (no request reached the pipeline). */
export function errorResponse(status: number, text: string, close = true): string {
  const body = `${status} ${STATUS_CODES[status] ?? ''}: ${text}\n`;
  return (
    statusLine(status) +
    dateField() +
    'content-type: text/plain; charset=utf-8\r\ncache-control: no-store\r\n' +
    `content-length: ${Buffer.byteLength(body)}\r\n` +
    (close ? 'connection: close\r\n' : '') +
    '\r\n' +
    body
  );
}
