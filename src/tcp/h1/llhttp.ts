// node's own llhttp binding, the parser node:http uses (strict mode: no lenient flags), without node:http's
// IncomingMessage/ServerResponse objects around it. Reached through `_http_common`, the internal module
// node:http itself loads; its shape has been stable since Node 12 and is checked at start (a changed shape
// throws here, at import, not on a request).
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

/** The callbacks llhttp calls, by their slot numbers on the parser object. */
export interface ParserCallbacks {
  /** Header fields that did not fit one flush (more than 32 pairs, or split across reads). */
  onHeaders(headers: string[], url: string): void;
  onHeadersComplete(
    versionMajor: number,
    versionMinor: number,
    /** undefined when the fields came through onHeaders (more than 32, or split across reads); so is url. */
    headers: string[] | undefined,
    method: number,
    url: string | undefined,
    statusCode: number,
    statusMessage: string,
    upgrade: boolean,
    shouldKeepAlive: boolean,
  ): number | void;
  onBody(chunk: Buffer): void;
  onMessageComplete(): void;
}

export interface NativeParser {
  initialize(type: number, resource: object, maxHeaderSize: number, lenientFlags: number): void;
  /** Bytes parsed, or an Error with `code` (e.g. HPE_INVALID_METHOD) and `bytesParsed`. */
  execute(data: Buffer): number | ParseError;
  finish(): number | ParseError | undefined;
  pause(): void;
  resume(): void;
  close(): void;
  free(): void;
  remove(): void;
  [slot: number]: unknown;
}

export interface ParseError extends Error {
  code: string;
  bytesParsed: number;
  reason?: string;
}

interface HTTPParserClass {
  new (): NativeParser;
  REQUEST: number;
  RESPONSE: number;
  kOnMessageBegin: number;
  kOnHeaders: number;
  kOnHeadersComplete: number;
  kOnBody: number;
  kOnMessageComplete: number;
  kOnExecute: number;
  kLenientNone: number;
}

const common = require('_http_common') as { HTTPParser: HTTPParserClass; methods: string[] };
const { HTTPParser } = common;
for (const key of ['kOnHeaders', 'kOnHeadersComplete', 'kOnBody', 'kOnMessageComplete', 'REQUEST'] as const) {
  if (typeof HTTPParser?.[key] !== 'number') throw new Error(`node's HTTP parser binding changed shape (${key} missing): this Node version is not supported`);
}

/** Method names by llhttp's method number. */
export const METHODS: readonly string[] = common.methods;

/** A request parser with its callbacks installed. */
export function createRequestParser(cb: ParserCallbacks, maxHeaderSize: number): NativeParser {
  const parser = new HTTPParser();
  parser.initialize(HTTPParser.REQUEST, {}, maxHeaderSize, HTTPParser.kLenientNone);
  parser[HTTPParser.kOnHeaders] = cb.onHeaders;
  parser[HTTPParser.kOnHeadersComplete] = cb.onHeadersComplete;
  parser[HTTPParser.kOnBody] = cb.onBody;
  parser[HTTPParser.kOnMessageComplete] = cb.onMessageComplete;
  return parser;
}

export function isParseError(r: unknown): r is ParseError {
  return r instanceof Error;
}
