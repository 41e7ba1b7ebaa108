// One "shard" for the cache's thread tests: a worker thread running the test caching proxy on the shared
// store and the shared counters it is given; posts its port, closes on 'close'.
import { parentPort, workerData } from 'node:worker_threads';
import type { CacheSettings } from '../../src/cache/settings.ts';
import { startCacheProxy } from './cache-proxy.ts';

const { origin, settings, sharedBuffer } = workerData as { origin: string; settings: CacheSettings; sharedBuffer: SharedArrayBuffer };
const proxy = await startCacheProxy(origin, settings, sharedBuffer, { onError: (err, what) => console.error(what, err) });
parentPort!.on('message', async (msg) => {
  if (msg === 'close') {
    await proxy.close();
    parentPort!.postMessage('closed');
  }
});
parentPort!.postMessage({ port: proxy.port });
