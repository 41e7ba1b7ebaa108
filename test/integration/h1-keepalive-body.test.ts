// A keep-alive HTTP/1.1 connection stays usable after a request body that filled quiclb's body buffer:
// the pause for that backpressure must end with the body (it once outlived it, and the next request on
// the connection waited unread for server.idleTimeout).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { startLbWithRawBackends, type LbWithRawBackends } from '../support/lb-with-raw-backends.ts';

let env: LbWithRawBackends;

before(async () => {
  env = await startLbWithRawBackends(1);
});

after(async () => {
  await env?.stop();
});

/** One client connection that reads whole responses (content-length framed) in order. */
function openClient(port: number): { send(data: string | Buffer): void; next(timeoutMs: number): Promise<string>; close(): void } {
  const socket = net.connect(port, '127.0.0.1');
  socket.on('error', () => undefined);
  let buf = Buffer.alloc(0);
  let waiter: (() => void) | undefined;
  socket.on('data', (c) => {
    buf = Buffer.concat([buf, c]);
    waiter?.();
  });
  socket.on('close', () => waiter?.());
  const take = (): string | undefined => {
    const text = buf.toString('latin1');
    const end = text.indexOf('\r\n\r\n');
    if (end < 0) return undefined;
    const length = Number(/\r\ncontent-length: *(\d+)/i.exec(text.slice(0, end))?.[1] ?? 0);
    if (buf.length < end + 4 + length) return undefined;
    buf = buf.subarray(end + 4 + length);
    return text.slice(0, end + 4 + length);
  };
  return {
    send: (data) => socket.write(data),
    next: (timeoutMs) =>
      new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          waiter = undefined;
          reject(new Error(`no response within ${timeoutMs} ms`));
        }, timeoutMs);
        const check = () => {
          const r = take();
          if (r !== undefined || socket.destroyed) {
            clearTimeout(timer);
            waiter = undefined;
            if (r !== undefined) resolve(r);
            else reject(new Error('connection closed before a response'));
          }
        };
        waiter = check;
        check();
      }),
    close: () => socket.destroy(),
  };
}

test('after a chunked body larger than the body buffer, ending in the same read as its data, the next request is served', { timeout: 60_000 }, async () => {
  const client = openClient(env.lb.httpPort);
  try {
    // The first request of the run (the backend connection is still being opened, so nothing reads the
    // body yet) and a size just past one 64 KiB socket read: the second read fills the body buffer and
    // holds the final chunk too. Later rounds show the connection stays usable either way.
    for (const size of [100 * 1024, 100 * 1024, 1024 * 1024]) {
      // Head, one big chunk and the final chunk in a single write.
      const chunk = Buffer.alloc(size, 0x61);
      client.send(Buffer.concat([Buffer.from(`POST /upload HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n${size.toString(16)}\r\n`), chunk, Buffer.from('\r\n0\r\n\r\n')]));
      const upload = await client.next(20_000);
      assert.match(upload, /^HTTP\/1\.1 200 /);
      // The next request on the same connection is sent only now, after the answer.
      client.send('GET /after HTTP/1.1\r\nHost: a\r\n\r\n');
      const after = await client.next(10_000);
      assert.match(after, /^HTTP\/1\.1 200 /);
    }
    const received = env.backends[0].requests.filter((r) => r.method === 'POST');
    assert.deepEqual(received.map((r) => [r.body.length, r.complete]), [[100 * 1024, true], [100 * 1024, true], [1024 * 1024, true]]);
  } finally {
    client.close();
  }
  await env.assertUnharmed();
});
