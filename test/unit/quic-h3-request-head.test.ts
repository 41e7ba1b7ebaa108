import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { requestHead } from '../../src/quic/h3-request-head.ts';

describe('requestHead: the FrontRequest target from an HTTP/3 header section', () => {
  it(':authority only: authority from it, one host field added in front', () => {
    const h = requestHead([
      [':method', 'GET'],
      [':scheme', 'https'],
      [':authority', 'moodle.example:9443'],
      [':path', '/my/?x=1'],
      ['accept', '*/*'],
    ]);
    assert.deepEqual(h, { method: 'GET', authority: 'moodle.example:9443', path: '/my/?x=1', headers: [['host', 'moodle.example:9443'], ['accept', '*/*']], protocol: '' });
  });

  it('host only: authority from host, host kept once', () => {
    const h = requestHead([
      [':method', 'POST'],
      [':scheme', 'https'],
      [':path', '/'],
      ['host', 'moodle.example'],
      ['content-length', '0'],
    ]);
    assert.equal(h.authority, 'moodle.example');
    assert.deepEqual(h.headers, [['host', 'moodle.example'], ['content-length', '0']]);
  });

  it('both (equal, as validation requires): one host field', () => {
    const h = requestHead([
      [':method', 'GET'],
      [':scheme', 'https'],
      [':authority', 'a.example'],
      [':path', '/'],
      ['host', 'a.example'],
    ]);
    assert.deepEqual(h.headers.filter(([n]) => n === 'host'), [['host', 'a.example']]);
  });
});
