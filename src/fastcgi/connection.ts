// One socket to php-fpm (unix socket or TCP). php-fpm does not multiplex (FCGI_MPXS_CONNS is 0), so a
// connection carries one request at a time; with FCGI_KEEP_CONN it carries the next one after END_REQUEST.

import { connect, type Socket } from 'node:net';
import { FastCgiError } from './errors.ts';

export type FastCgiTarget = { socketPath: string } | { host: string; port: number };

export function describeTarget(t: FastCgiTarget): string {
  if ('socketPath' in t) return `unix:${t.socketPath}`;
  return t.host.includes(':') ? `[${t.host}]:${t.port}` : `${t.host}:${t.port}`;
}

/** A socket error as a FastCgiError whose code the proxy classifies (ECONNREFUSED, ECONNRESET, EPIPE, ...). */
export function socketError(err: unknown, target: FastCgiTarget, during: string): FastCgiError {
  const errno = (err as NodeJS.ErrnoException | undefined)?.code ?? 'ECONNRESET';
  const where = describeTarget(target);
  // A unix socket file that is missing is a php-fpm that is not running: the same class as a refusal.
  if (errno === 'ENOENT' && 'socketPath' in target) {
    return new FastCgiError('ECONNREFUSED', `php-fpm socket ${where} does not exist (${during}): is php-fpm running with this listen path?`, { cause: err });
  }
  if (errno === 'ECONNREFUSED') {
    return new FastCgiError('ECONNREFUSED', `php-fpm at ${where} refused the connection: is php-fpm running and listening there?`, { cause: err });
  }
  if (errno === 'EACCES') {
    return new FastCgiError('EACCES', `no permission to connect to ${where}: check php-fpm's listen.owner/listen.mode`, { cause: err });
  }
  return new FastCgiError(errno, `php-fpm connection ${where} failed ${during} (${errno})`, { cause: err });
}

export interface Connection {
  readonly socket: Socket;
  readonly target: FastCgiTarget;
  /** Requests started on this socket (more than 0 means the next one reuses a kept connection). */
  requests: number;
}

/** Connects within timeoutMs (0 = no bound); rejects with a FastCgiError. */
export function openConnection(target: FastCgiTarget, timeoutMs: number): Promise<Connection> {
  return new Promise((resolve, reject) => {
    const socket = 'socketPath' in target ? connect({ path: target.socketPath }) : connect({ host: target.host, port: target.port });
    let timer: NodeJS.Timeout | undefined;
    const settle = (err: FastCgiError | undefined): void => {
      clearTimeout(timer);
      socket.removeListener('error', onError);
      socket.removeListener('connect', onConnect);
      if (err === undefined) {
        resolve({ socket, target, requests: 0 });
      } else {
        socket.destroy();
        reject(err);
      }
    };
    const onError = (err: Error): void => settle(socketError(err, target, 'while connecting'));
    const onConnect = (): void => {
      if ('host' in target) socket.setNoDelay(true);
      settle(undefined);
    };
    socket.once('error', onError);
    socket.once('connect', onConnect);
    if (timeoutMs > 0) {
      timer = setTimeout(
        () => settle(new FastCgiError('QUICLB_FCGI_CONNECT_TIMEOUT', `connecting to php-fpm at ${describeTarget(target)} took longer than ${timeoutMs} ms`)),
        timeoutMs,
      );
    }
  });
}
