// cacheSettings(): what cache.* and moodle.enableCaching mean once the config is loaded.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { validateConfig } from '../../src/config/load.ts';
import { cacheSettings } from '../../src/cache/settings.ts';

test('the cache is off by default; cache.enabled or moodle.enableCaching turns it on with the same settings', () => {
  assert.equal(cacheSettings(validateConfig({})).enabled, false);
  assert.equal(cacheSettings(validateConfig({ cache: { enabled: true } })).enabled, true);
  const moodle = cacheSettings(validateConfig({ moodle: { enableCaching: true } }));
  assert.deepEqual(moodle, { enabled: true, path: '.quiclb-state/cache.sqlite', maxSize: 256 * 1024 * 1024, maxEntrySize: 8 * 1024 * 1024, lockTimeoutMs: 5000 });
});

test('the store lives in tls.stateDir unless cache.path says otherwise', () => {
  assert.equal(cacheSettings(validateConfig({ tls: { stateDir: '/var/lib/quiclb' } })).path, '/var/lib/quiclb/cache.sqlite');
  assert.equal(cacheSettings(validateConfig({ tls: { stateDir: '/var/lib/quiclb' }, cache: { path: '/srv/c.sqlite' } })).path, '/srv/c.sqlite');
});
