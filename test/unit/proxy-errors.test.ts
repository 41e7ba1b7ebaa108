// Who caused a failed forward, for FastCGI backends as for HTTP ones (src/proxy/errors.ts): FastCGI socket
// failures read like undici's, its timeouts are 504, and a failure of the client's body (wrapped by the FastCGI
// client or the spool) is the client's, never the backend's.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { classifyFailure, clientFault } from '../../src/proxy/errors.ts';
import { FastCgiError } from '../../src/fastcgi/errors.ts';
import { SpoolError } from '../../src/fastcgi/spool.ts';
import { ClientError } from '../../src/shared/client-errors.ts';

test('FastCGI failures map to 502/504 like HTTP ones', () => {
  const kind = (code: string) => {
    const f = classifyFailure(new FastCgiError(code, 'x'));
    return `${f.kind} ${f.status}`;
  };
  assert.equal(kind('ECONNREFUSED'), 'refused 502');
  assert.equal(kind('EACCES'), 'refused 502');
  assert.equal(kind('QUICLB_FCGI_QUEUE_FULL'), 'refused 502');
  assert.equal(kind('ECONNRESET'), 'reset 502');
  assert.equal(kind('EPIPE'), 'reset 502');
  for (const t of ['QUICLB_FCGI_CONNECT_TIMEOUT', 'QUICLB_FCGI_HEADERS_TIMEOUT', 'QUICLB_FCGI_BODY_TIMEOUT', 'QUICLB_FCGI_QUEUE_TIMEOUT']) assert.equal(kind(t), 'timeout 504', t);
  assert.equal(kind('QUICLB_FCGI_PROTOCOL'), 'other 502');
  assert.equal(kind('QUICLB_FCGI_BAD_HEADER'), 'other 502');
});

test("the client's own failures, wrapped by the FastCGI client or the spool, are the client's", () => {
  const aborted = new ClientError('QUICLB_CLIENT_ABORTED', 'the client reset the stream');
  const wrapped = new FastCgiError('QUICLB_FCGI_REQUEST_BODY', 'the request body failed', { cause: aborted });
  assert.deepEqual(clientFault(wrapped, false), { status: 400, text: 'the client reset the stream' });
  const tooLarge = new ClientError('QUICLB_BODY_TOO_LARGE', 'over server.maxBodySize');
  assert.equal(clientFault(new SpoolError('QUICLB_SPOOL_BODY_FAILED', 'spool', { cause: tooLarge }), false)?.status, 413);
  const slow = new ClientError('QUICLB_CLIENT_TIMEOUT', 'paused too long');
  assert.equal(clientFault(new FastCgiError('QUICLB_FCGI_REQUEST_BODY', 'x', { cause: slow }), false)?.status, 408);
  // A body shorter or longer than declared, with no cause: the request's fault, 400.
  assert.equal(clientFault(new FastCgiError('QUICLB_FCGI_REQUEST_BODY', 'gave 10 of 20 bytes'), false)?.status, 400);
  assert.equal(clientFault(new FastCgiError('QUICLB_FCGI_NO_SCRIPT', 'x'), false)?.status, 404);
  assert.equal(clientFault(new FastCgiError('ECONNRESET', 'x'), false), undefined, 'a reset by php-fpm is the backend');
  assert.equal(clientFault(new FastCgiError('ECONNRESET', 'x'), true)?.status, 499);
});
