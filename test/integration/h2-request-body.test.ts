// The HTTP/2 frontend's side of an upload, in-process: the request body Readable it hands to the pipeline
// ends only on END_STREAM and errors (never ends) when the client resets the stream or the connection
// goes, whatever the reset code; onClientAbort fires at once. Clients: node:http2 and test/support/h2-raw.ts.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http2 from 'node:http2';
import type { FrontRequest, FrontResponse } from '../../src/shared/http-types.ts';
import { startFrontend } from '../support/h2-frontend-harness.ts';
import type { FrontendHarness } from '../support/h2-frontend-harness.ts';
import { RawH2, H2_ERROR } from '../support/h2-raw.ts';

interface Seen {
  req: FrontRequest;
  res: FrontResponse;
  bytes: number;
  outcome: Promise<{ ended: boolean; error?: string; clientAbortAfterMs?: number }>;
}

let h: FrontendHarness;
let port: number;
const seen: Seen[] = [];
const arrivals = new Set<() => void>();

function nextRequest(): Promise<Seen> {
  const taken = seen.length;
  return new Promise((resolve) => {
    const check = () => {
      if (seen.length > taken) {
        arrivals.delete(check);
        resolve(seen[taken]);
      }
    };
    arrivals.add(check);
  });
}

before(async () => {
  h = await startFrontend((req, res) => {
    const s: Seen = {
      req,
      res,
      bytes: 0,
      outcome: new Promise((resolve) => {
        let abortedAt: number | undefined;
        res.onClientAbort(() => (abortedAt = performance.now()));
        const started = performance.now();
        req.body!.on('data', (c: Buffer) => (s.bytes += c.length));
        req.body!.on('end', () => {
          res.respond(200, [['content-length', '0']]).end();
          resolve({ ended: true });
        });
        req.body!.on('error', (err: Error & { code?: string }) =>
          resolve({ ended: false, error: err.code, clientAbortAfterMs: abortedAt === undefined ? undefined : abortedAt - started }),
        );
      }),
    };
    seen.push(s);
    for (const a of [...arrivals]) a();
  });
  port = h.port;
});

after(() => h.close());

async function untilBytes(s: Seen, n: number): Promise<void> {
  while (s.bytes < n) await new Promise((r) => setTimeout(r, 5));
}

test('a complete upload (END_STREAM) ends the body with every byte', async () => {
  const session = http2.connect(`https://127.0.0.1:${port}`, { rejectUnauthorized: false });
  const arrived = nextRequest();
  const req = session.request({ ':method': 'POST', ':path': '/up' });
  req.end(Buffer.alloc(100_000, 1));
  req.resume();
  const s = await arrived;
  assert.deepEqual(await s.outcome, { ended: true });
  assert.equal(s.bytes, 100_000);
  session.close();
});

for (const [name, code] of [['CANCEL', H2_ERROR.CANCEL], ['NO_ERROR', H2_ERROR.NO_ERROR], ['INTERNAL_ERROR', H2_ERROR.INTERNAL_ERROR]] as const) {
  test(`RST_STREAM(${name}) mid-body: the body errors with QUICLB_H2_CLIENT_RESET and onClientAbort has fired`, async () => {
    const c = await RawH2.connect(port);
    const arrived = nextRequest();
    c.request(1, [[':method', 'POST'], [':scheme', 'https'], [':authority', 'a.test'], [':path', '/up']], false);
    c.write(c.dataFrame(1, Buffer.alloc(1000), false));
    const s = await arrived;
    await untilBytes(s, 1000);
    c.write(c.rstFrame(1, code));
    const outcome = await s.outcome;
    assert.equal(outcome.ended, false);
    assert.equal(outcome.error, 'QUICLB_H2_CLIENT_RESET');
    assert.ok(outcome.clientAbortAfterMs !== undefined, 'onClientAbort fired before the body error was seen');
    c.close();
  });
}

test('the connection closing mid-body: the body errors with QUICLB_H2_CONNECTION_CLOSED', async () => {
  const session = http2.connect(`https://127.0.0.1:${port}`, { rejectUnauthorized: false });
  session.on('error', () => undefined);
  const arrived = nextRequest();
  const req = session.request({ ':method': 'POST', ':path': '/up' });
  req.on('error', () => undefined);
  req.write(Buffer.alloc(5000, 2));
  const s = await arrived;
  await untilBytes(s, 5000);
  session.destroy();
  const outcome = await s.outcome;
  assert.equal(outcome.ended, false);
  assert.equal(outcome.error, 'QUICLB_H2_CONNECTION_CLOSED');
  assert.ok(outcome.clientAbortAfterMs !== undefined);
});
