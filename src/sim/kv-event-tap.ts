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
