// Request/reply over postMessage: one helper for every exchange between the primary and the shards that
// expects an answer (latency snapshots, configuration reloads). A request gets a fresh id, the reply carries
// it back, and a reply that does not come within the timeout settles the request with a fallback value, so
// a stuck or dead thread never leaves a caller waiting.

interface Waiter<T> {
  resolve: (value: T) => void;
  timer: NodeJS.Timeout;
}

export class PendingReplies<T> {
  private nextId = 0;
  private readonly waiting = new Map<number, Waiter<T>>();

  /**
   * Sends a request through `send(id)` and resolves with the reply given to settle(id), or with
   * `onTimeout()` after `timeoutMs`. When `send` returns false (the peer is gone) it resolves at once
   * with `onTimeout()`. Never rejects.
   */
  request(send: (id: number) => boolean, timeoutMs: number, onTimeout: () => T): Promise<T> {
    const id = this.nextId++;
    return new Promise<T>((resolve) => {
      const timer = setTimeout(() => {
        this.waiting.delete(id);
        resolve(onTimeout());
      }, timeoutMs);
      timer.unref();
      this.waiting.set(id, { resolve, timer });
      let sent = false;
      try {
        sent = send(id);
      } finally {
        if (!sent && this.waiting.delete(id)) {
          clearTimeout(timer);
          resolve(onTimeout());
        }
      }
    });
  }

  /** Hands `value` to the request `id`; false when nobody waits for it any more (timed out, unknown). */
  settle(id: number, value: T): boolean {
    const w = this.waiting.get(id);
    if (w === undefined) return false;
    this.waiting.delete(id);
    clearTimeout(w.timer);
    w.resolve(value);
    return true;
  }

  /** Requests still waiting for their reply. */
  get size(): number {
    return this.waiting.size;
  }
}
