// Backends may send "100 Continue" unasked: RFC 9110 §15.2 says a client MUST be able to parse 1xx responses
// it did not expect. undici 8 instead destroys the connection on a 100 it did not ask for ("bad response"),
// which quiclb would answer 502 and count against a healthy backend (Apache and PHP do send it on uploads).
// So the backend sockets quiclb opens drop a "100 Continue" that arrives where a response head may start,
// i.e. as the first bytes after a request head was written; every other byte passes untouched. (103 and 102
// undici already hands over as interim responses; the forwarder skips them.)
import net from 'node:net';
import { buildConnector } from 'undici';

const REQUEST_HEAD = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+ \S+ HTTP\/1\.1\r\n/;
const CONTINUE = /^HTTP\/1\.[01] 100[^\r\n]*\r\n(?:[^\r\n]+\r\n)*\r\n/;

interface Filtered extends net.Socket {
  awaitingHead?: boolean;
}

/** Removes leading interim 100 responses from a chunk read where a response head may start. */
export function stripContinue(chunk: Buffer): Buffer | null {
  let rest = chunk;
  for (;;) {
    if (rest.length < 12 || rest[9] !== 0x31 /* '1' */ || rest[10] !== 0x30 || rest[11] !== 0x30) return rest;
    const m = CONTINUE.exec(rest.toString('latin1', 0, Math.min(rest.length, 4096)));
    if (m === null) return rest; // not a complete 100 head in this chunk: leave the bytes to undici
    rest = rest.subarray(m[0].length);
    if (rest.length === 0) return null;
  }
}

/** Makes `socket` drop interim 100 responses (see above). */
export function filterInterimContinue(socket: net.Socket): void {
  const s = socket as Filtered;
  const write = s.write;
  const read = s.read;
  s.write = function (this: Filtered, chunk: unknown, ...rest: unknown[]): boolean {
    if (typeof chunk === 'string' && REQUEST_HEAD.test(chunk)) this.awaitingHead = true;
    return (write as (...a: unknown[]) => boolean).call(this, chunk, ...rest);
  } as net.Socket['write'];
  s.read = function (this: Filtered, size?: number): Buffer | null {
    for (;;) {
      const chunk = read.call(this, size) as Buffer | null;
      if (chunk === null || !this.awaitingHead || chunk.length === 0) return chunk;
      this.awaitingHead = false;
      const kept = stripContinue(chunk);
      if (kept !== null) return kept;
      this.awaitingHead = true; // the chunk was only a 100: the real head is still to come
    }
  };
}

/**
 * Gives `socket` its own read() and write() back (after a WebSocket upgrade): the bytes that follow a 101
 * belong to the tunnel, and not one of them may be taken for an HTTP response head.
 */
export function releaseInterimFilter(socket: net.Socket): void {
  const s = socket as Filtered;
  if (Object.hasOwn(s, 'read')) delete (s as Partial<Filtered>).read;
  if (Object.hasOwn(s, 'write')) delete (s as Partial<Filtered>).write;
  s.awaitingHead = false;
}

/** An undici `connect` function whose sockets drop unsolicited 100 Continue responses. */
export function interimFilteringConnector(options: buildConnector.BuildOptions): buildConnector.connector {
  const connect = buildConnector(options);
  return (opts, callback) =>
    connect(opts, (...args) => {
      if (args[0] === null) filterInterimContinue(args[1] as net.Socket);
      callback(...args);
    });
}
