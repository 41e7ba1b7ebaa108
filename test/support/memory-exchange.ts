// An in-memory FrontRequest/FrontResponse pair for unit tests of the pipeline and its phases: the response
// records its status, headers, body, interim responses and aborts; `done` settles when it ended or aborted.
import { PassThrough, Readable } from 'node:stream';
import type { BodySink, FrontRequest, FrontResponse, HeaderList } from '../../src/shared/http-types.ts';

export interface Recorded {
  status: number;
  headers: HeaderList;
  body: Buffer;
  informs: number[];
  aborted: boolean;
}

export interface MemoryExchange {
  req: FrontRequest;
  res: FrontResponse;
  recorded: Recorded;
  done: Promise<Recorded>;
  /** Simulates the client going away. */
  clientLeaves(): void;
  /** Makes the sink refuse writes (write() false) until release(). */
  slow: { on(): void; release(): void };
}

export function memoryExchange(init: Partial<FrontRequest> & { bodyText?: string } = {}): MemoryExchange {
  const { bodyText, ...rest } = init;
  const req: FrontRequest = {
    protocol: 'HTTP/1.1',
    method: 'GET',
    scheme: 'http',
    authority: 'moodle.example.edu',
    path: '/',
    headers: [['host', init.authority ?? 'moodle.example.edu']],
    body: bodyText === undefined ? null : Readable.from([Buffer.from(bodyText)]),
    remoteAddress: '203.0.113.9',
    remotePort: 50000,
    localPort: 8080,
    connectionKey: 'mem-1',
    shard: 0,
    ...rest,
  };
  const recorded: Recorded = { status: 0, headers: [], body: Buffer.alloc(0), informs: [], aborted: false };
  let settle!: (r: Recorded) => void;
  const done = new Promise<Recorded>((r) => (settle = r));
  let sent = false;
  let finished = false;
  let gone = false;
  let slow = false;
  let drainWaiters: Array<() => void> = [];
  const abortCbs: Array<() => void> = [];
  const chunks: Buffer[] = [];
  const sink: BodySink = {
    write(chunk) {
      chunks.push(Buffer.from(chunk));
      return !slow;
    },
    end(chunk) {
      if (chunk !== undefined) chunks.push(Buffer.from(chunk));
      finished = true;
      recorded.body = Buffer.concat(chunks);
      settle(recorded);
    },
    onDrain(cb) {
      if (slow) drainWaiters.push(cb);
      else process.nextTick(cb);
    },
  };
  const res: FrontResponse = {
    respond(status, headers) {
      if (sent) throw new Error('respond() called twice');
      sent = true;
      recorded.status = status;
      recorded.headers = headers;
      return sink;
    },
    inform(status) {
      recorded.informs.push(status);
    },
    abort() {
      recorded.aborted = true;
      recorded.body = Buffer.concat(chunks);
      settle(recorded);
    },
    get headersSent() {
      return sent;
    },
    get finished() {
      return finished;
    },
    onClientAbort(cb) {
      if (gone) process.nextTick(cb);
      else abortCbs.push(cb);
    },
  };
  if (req.upgrade === 'websocket') {
    // As the HTTP/1.1 frontend: 101 with the given fields, and the client's byte stream handed over.
    res.upgrade = (headers) => {
      if (sent) throw new Error('upgrade() after respond()');
      sent = true;
      finished = true;
      recorded.status = 101;
      recorded.headers = headers;
      settle(recorded);
      return new PassThrough();
    };
  }
  return {
    req,
    res,
    recorded,
    done,
    clientLeaves() {
      gone = true;
      for (const cb of abortCbs) cb();
    },
    slow: {
      on: () => {
        slow = true;
      },
      release: () => {
        slow = false;
        const w = drainWaiters;
        drainWaiters = [];
        for (const cb of w) cb();
      },
    },
  };
}

export const header = (headers: HeaderList, name: string): string | undefined => headers.find(([n]) => n === name)?.[1];
