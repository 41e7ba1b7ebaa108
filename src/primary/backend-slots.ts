// Which SharedState slot each backend lives in. The primary is the only owner of this map: a backend keeps
// its slot (and so its counters, health state, latency history and pinned sessions) as long as a reload
// keeps its id; a new backend takes a free slot; a removed backend's slot is retired and becomes free only
// once no shard runs a request that could still use it (src/primary/reload.ts decides when). Free slots
// are reused in the order they were freed, so a slot rests as long as possible before it is reused.
import type { BackendConfig } from '../config/types.ts';
import { ConfigError } from '../config/errors.ts';
import { MAX_BACKENDS } from '../shared/state.ts';

export interface SlotPlan {
  /** slots[i]: the slot of servers[i]. */
  slots: number[];
  /** Slots of backends that are new (their counters start from zero). */
  fresh: number[];
  added: string[];
  kept: string[];
  removed: Array<{ id: string; slot: number }>;
}

export class BackendSlots {
  private readonly byId = new Map<string, number>();
  private free: number[] = [];
  /** Removed backends' slots, not free yet: slot -> the generation that removed it. */
  private readonly retiring = new Map<number, { id: string; generation: number }>();
  private readonly capacity: number;

  /** At start: servers[i] takes slot i. */
  constructor(servers: readonly BackendConfig[], capacity = MAX_BACKENDS) {
    this.capacity = capacity;
    servers.forEach((b, i) => this.byId.set(b.id, i));
    for (let s = servers.length; s < capacity; s++) this.free.push(s);
  }

  /** The slot map of `servers` (all of them must hold slots). */
  slotsOf(servers: readonly BackendConfig[]): number[] {
    return servers.map((b) => {
      const slot = this.byId.get(b.id);
      if (slot === undefined) throw new Error(`backend ${b.id} has no slot`);
      return slot;
    });
  }

  /**
   * Where `servers` would live; changes nothing. Throws a ConfigError naming loadBalancer.backendServers when
   * there are not enough free slots (removed backends still draining hold theirs).
   */
  plan(servers: readonly BackendConfig[]): SlotPlan {
    const wanted = new Set(servers.map((b) => b.id));
    const free = [...this.free];
    const slots: number[] = [];
    const fresh: number[] = [];
    const added: string[] = [];
    const kept: string[] = [];
    for (const b of servers) {
      const slot = this.byId.get(b.id);
      if (slot !== undefined) {
        slots.push(slot);
        kept.push(b.id);
        continue;
      }
      const taken = free.shift();
      if (taken === undefined) {
        throw ConfigError.at(
          'loadBalancer.backendServers',
          `no free slot for new backend ${JSON.stringify(b.id)}: ${this.capacity} slots, ${this.byId.size} held by configured backends and ${this.retiring.size} by removed ones that still finish their requests; reload again once they did`,
        );
      }
      slots.push(taken);
      fresh.push(taken);
      added.push(b.id);
    }
    const removed = [...this.byId].filter(([id]) => !wanted.has(id)).map(([id, slot]) => ({ id, slot }));
    return { slots, fresh, added, kept, removed };
  }

  /** Makes `plan` (from plan(), with nothing changed since) the current assignment. */
  commit(plan: SlotPlan, servers: readonly BackendConfig[], generation: number): void {
    for (const r of plan.removed) {
      this.byId.delete(r.id);
      this.retiring.set(r.slot, { id: r.id, generation });
    }
    const taken = new Set(plan.fresh);
    this.free = this.free.filter((s) => !taken.has(s));
    servers.forEach((b, i) => this.byId.set(b.id, plan.slots[i]));
  }

  /** Retired slots and the generation that removed their backend. */
  retired(): Array<{ slot: number; id: string; generation: number }> {
    return [...this.retiring].map(([slot, r]) => ({ slot, ...r }));
  }

  /** A retired slot becomes free (its backend's last request ended everywhere). */
  release(slot: number): void {
    if (!this.retiring.delete(slot)) return;
    this.free.push(slot);
  }
}
