// Refusals by reason, counted in one small SharedArrayBuffer so /stats and /metrics on any thread read the
// sum over all shards. BigInt64 cells: a long flood must not wrap them.

export type LimitReason = 'general' | 'login' | 'connections';

export const LIMIT_REASONS: readonly LimitReason[] = ['general', 'login', 'connections'];

const INDEX: Record<LimitReason, number> = { general: 0, login: 1, connections: 2 };
const CELLS = 4;

export class LimitCounters {
  readonly buffer: SharedArrayBuffer;
  private readonly cells: BigInt64Array;

  constructor(buffer: SharedArrayBuffer = new SharedArrayBuffer(CELLS * 8)) {
    this.buffer = buffer;
    this.cells = new BigInt64Array(buffer, 0, CELLS);
  }

  count(reason: LimitReason): void {
    Atomics.add(this.cells, INDEX[reason], 1n);
  }

  read(reason: LimitReason): number {
    return Number(Atomics.load(this.cells, INDEX[reason]));
  }
}
