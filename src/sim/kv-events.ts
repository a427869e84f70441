import type { BlockHash } from "../core/block-hash.js";
import type { BlockPool } from "../core/block-pool.js";
import type { SchedulerOutput } from "../core/scheduler-output.js";

/** What one step changed in a replica's prefix cache, as vLLM's BlockStored and BlockRemoved events say it. */
export interface KvEvents {
  stored: BlockHash[];
  removed: BlockHash[];
}

/**
 * Reads a simulated replica's KV-cache events off its block pool after each step, without hooks in the core: a
 * step caches and evicts only blocks in the token range it scheduled (a block is evicted when it is handed out
 * again, and the scheduler never takes back a block it handed out in the same step), so comparing those blocks'
 * hashes with the ones last seen finds every change. Events within one step are merged into its net change
 * (a block evicted and cached again under the same hash shows none).
 */
export class KvEventTap {
  private readonly seen: (BlockHash | undefined)[];

  constructor(
    private readonly pool: BlockPool,
    private readonly blockSize: number,
  ) {
    this.seen = new Array<BlockHash | undefined>(pool.numBlocks).fill(undefined);
  }

  afterStep(output: SchedulerOutput): KvEvents {
    const events: KvEvents = { stored: [], removed: [] };
    for (const s of output.scheduled) {
      const from = Math.floor(s.numComputedTokens / this.blockSize);
      const to = Math.ceil((s.numComputedTokens + s.numNewTokens) / this.blockSize);
      for (const table of s.blockIds) {
        for (let i = from; i < Math.min(to, table.length); i++) this.check(table[i], events);
      }
    }
    return events;
  }

  private check(blockId: number, events: KvEvents): void {
    const hash = this.pool.blockHash(blockId);
    const before = this.seen[blockId];
    if (hash === before) return;
    if (before !== undefined) events.removed.push(before);
    if (hash !== undefined) events.stored.push(hash);
    this.seen[blockId] = hash;
  }
}

/**
 * The router's picture of which replica holds which block, built from the replicas' KV events as llm-d's KV-block
 * index is: hash → replica → blocks holding it (a hash is held once per KV cache group that caches it).
 */
export class BlockIndex {
  private readonly holders = new Map<BlockHash, Map<number, number>>();

  apply(replica: number, events: KvEvents): void {
    for (const hash of events.removed) {
      const held = this.holders.get(hash);
      const count = (held?.get(replica) ?? 0) - 1;
      if (!held || count < 0)
        throw new Error(`BlockIndex: replica ${replica} removed block ${hash}, never stored`);
      if (count > 0) held.set(replica, count);
      else held.delete(replica);
      if (held.size === 0) this.holders.delete(hash);
    }
    for (const hash of events.stored) {
      const held = this.holders.get(hash) ?? new Map<number, number>();
      held.set(replica, (held.get(replica) ?? 0) + 1);
      this.holders.set(hash, held);
    }
  }

  /** The replicas holding the block (as keys), or undefined when none does. */
  holdersOf(hash: BlockHash): ReadonlyMap<number, number> | undefined {
    return this.holders.get(hash);
  }
}
