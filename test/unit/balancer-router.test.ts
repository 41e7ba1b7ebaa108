import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Router, stripPort } from '../../src/balancer/router.ts';

test('routes by host (case-insensitive, port ignored) and longest path prefix', () => {
  const r = new Router([
    { pathPrefix: '/admin', group: 'admin' },
    { host: 'Files.Example.org', group: 'files' },
    { pathPrefix: '/admin/tool', group: 'tools' },
    { host: 'lms.example.org', pathPrefix: '/webservice', group: 'ws' },
    { pathPrefix: '/admin/tool', group: 'shadowed' },
  ]);
  assert.equal(r.groupFor('lms.example.org', '/course/view.php?id=2'), 'default');
  assert.equal(r.groupFor('lms.example.org', '/admin/index.php'), 'admin');
  assert.equal(r.groupFor('lms.example.org', '/admin/tool/task'), 'tools'); // longest wins; first of equals
  assert.equal(r.groupFor('LMS.example.org:8443', '/webservice/rest/server.php'), 'ws');
  assert.equal(r.groupFor('other.example.org', '/webservice/rest/server.php'), 'default');
  assert.equal(r.groupFor('files.example.org:443', '/pluginfile.php/1'), 'files');
  // "/admin" (6) beats the host route's implicit "/" (1).
  assert.equal(r.groupFor('files.example.org', '/admin/x'), 'admin');
});

test('no routes -> default group', () => {
  assert.equal(new Router([]).groupFor('x', '/'), 'default');
});

test('stripPort handles names, IPv4 and IPv6 literals', () => {
  assert.equal(stripPort('example.org:8443'), 'example.org');
  assert.equal(stripPort('127.0.0.1:80'), '127.0.0.1');
  assert.equal(stripPort('[::1]:443'), '[::1]');
  assert.equal(stripPort('[::1]'), '[::1]');
  assert.equal(stripPort('example.org'), 'example.org');
});
