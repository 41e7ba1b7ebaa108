// StreamWriter against a stand-in for quiche's stream API that records what each streamSend call carried and
// accepts only as much as its "flow control" allows.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { StreamWriter } from '../../src/quic/stream-writer.ts';
import type { QuicheConnection } from '../../src/quic/quiche.ts';

function conn(capacity = Infinity) {
  const calls: Array<{ len: number; fin: boolean }> = [];
  const bytes: number[] = [];
  let cap = capacity;
  const c = {
    streamSend(_id: number, data: Uint8Array, fin: boolean): number | null {
      const n = Math.min(cap, data.length);
      if (n === 0 && data.length > 0) return null;
      cap -= n;
      calls.push({ len: n, fin: fin && n === data.length });
      for (let i = 0; i < n; i++) bytes.push(data[i]);
      return n;
    },
    grant(n: number) {
      cap += n;
    },
  };
  return { c, calls, bytes };
}

describe('StreamWriter', () => {
  it('sends a small response (HEADERS, DATA header, body, FIN) in one streamSend', () => {
    const { c, calls, bytes } = conn();
    const w = new StreamWriter(0);
    w.push(Uint8Array.of(1, 2, 3));
    w.push(Uint8Array.of(0, 5));
    w.push(Buffer.from('hello'));
    w.end();
    assert.equal(w.drain(c as unknown as QuicheConnection), 'done');
    assert.deepEqual(calls, [{ len: 10, fin: true }]);
    assert.deepEqual(bytes, [1, 2, 3, 0, 5, ...Buffer.from('hello')]);
    assert.equal(w.finSent, true);
    assert.equal(w.queued, 0);
  });

  it('sends large chunks as they are, and resumes after flow control blocks it, bytes in order', () => {
    const { c, calls, bytes } = conn(20_000);
    const w = new StreamWriter(0);
    const big = Buffer.alloc(30_000, 7);
    w.push(Uint8Array.of(9));
    w.push(big);
    w.push(Uint8Array.of(8));
    w.end();
    assert.equal(w.drain(c as unknown as QuicheConnection), 'blocked');
    assert.equal(w.queued, 30_002 - 20_000);
    c.grant(1 << 20);
    assert.equal(w.drain(c as unknown as QuicheConnection), 'done');
    assert.deepEqual(bytes, [9, ...big, 8]);
    assert.ok(calls.every((x) => x.len <= 30_000));
    assert.equal(calls.at(-1)?.fin, true);
  });
});
