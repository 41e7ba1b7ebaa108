// The HTTP/2 frontend (src/tcp/h2) in the test process, behind a TLS listener on 127.0.0.1, for tests of
// its own behaviour with a request handler the test writes (no proxy, no backend).
import tls from 'node:tls';
import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import { H2Frontend } from '../../src/tcp/h2/frontend.ts';
import type { RequestHandler } from '../../src/shared/http-types.ts';
import { frontendLimits, type FrontendLimits } from '../../src/config/limits.ts';
import { validateConfig } from '../../src/config/load.ts';
import { ensureSelfSigned } from '../../src/shared/tls-material.ts';
import { createLogger } from '../../src/shared/logger.ts';

/** The limits frontendLimits() builds from a default config. */
export const DEFAULT_LIMITS: FrontendLimits = frontendLimits(validateConfig({}));

export interface FrontendHarness {
  port: number;
  frontend: H2Frontend;
  close(): Promise<void>;
}

let certs: Promise<{ cert: Buffer; key: Buffer }> | undefined;

function testCertificate(): Promise<{ cert: Buffer; key: Buffer }> {
  certs ??= (async () => {
    const files = await ensureSelfSigned(await mkdtemp(path.join(tmpdir(), 'quiclb-h2-harness-')));
    return { cert: await readFile(files.certFile), key: await readFile(files.keyFile) };
  })();
  return certs;
}

export async function startFrontend(onRequest: RequestHandler, limits: Partial<FrontendLimits> = {}): Promise<FrontendHarness> {
  const frontend = new H2Frontend({
    limits: { ...DEFAULT_LIMITS, ...limits },
    shard: 0,
    logger: createLogger({ level: 'fatal', format: 'json' }),
    connectionKey: (socket) => `test-${socket.remotePort}`,
    onRequest,
  });
  const { cert, key } = await testCertificate();
  const server = tls.createServer({ cert, key, ALPNProtocols: ['h2'] }, (socket) => frontend.accept(socket));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  return {
    port: (server.address() as AddressInfo).port,
    frontend,
    async close() {
      frontend.destroyAll();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
