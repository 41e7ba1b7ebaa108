// npm postinstall: writes the thread-safe copy of the quiche binding beside the installed one (see
// src/quic/quiche-binding-file.ts), so that a production install whose node_modules is read-only at run
// time still serves HTTP/3 on every shard. `quiclb start` does the same when the copy is missing, so a
// failure here only warns.
import { prepareQuicheBinding } from '../src/quic/quiche-binding-file.ts';

try {
  const b = prepareQuicheBinding();
  if (b.threadSafe) console.log(`quiclb: quiche binding ready for all shards (${b.detail}: ${b.path})`);
  else console.warn(`quiclb: HTTP/3 will run on one shard only: ${b.detail}`);
} catch (err) {
  console.warn(`quiclb: could not prepare the quiche binding (${(err as Error).message}); quiclb start will try again`);
}
