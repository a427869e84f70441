import type { BlockHash } from "./block-hash.js";
import { FreeBlockQueue } from "./free-block-queue.js";

/**
 * All KV cache blocks: which are in use (ref count = number of block tables holding the block), which
 * are free, and which hold a cached full block (hash → block id).
 *
 * Every block with ref count 0 is in the free queue, in reuse order: blocks with no cached content at the
 * head (reused first), cached ones behind them in least-recently-freed order.
 * A cached block keeps its hash while it waits in the queue, so a prefix hit can take it back; it loses
 * the hash only when it is reused (evicted).
 */
export class BlockPool {
  readonly numBlocks: number;
  private readonly refCounts: Int32Array;
  private readonly hashes: (BlockHash | undefined)[];
  private readonly cachedBlocks = new Map<BlockHash, number>();
  private readonly freeQueue: FreeBlockQueue;
  private evictions = 0;

  constructor(numBlocks: number) {
    if (!Number.isInteger(numBlocks) || numBlocks < 1) {
      throw new RangeError(`BlockPool: numBlocks must be an integer ≥ 1, got ${numBlocks}`);
    }
    this.numBlocks = numBlocks;
    this.refCounts = new Int32Array(numBlocks);
    this.hashes = new Array<BlockHash | undefined>(numBlocks).fill(undefined);
    const ids = Array.from({ length: numBlocks }, (_, i) => i);
    this.freeQueue = new FreeBlockQueue(numBlocks, ids);
  }

  /** Free blocks, cached ones included (they can be evicted). */
  get numFreeBlocks(): number {
    return this.freeQueue.length;
  }

  /** Fraction of the blocks in use. */
  get usage(): number {
    return 1 - this.freeQueue.length / this.numBlocks;
  }

  /** Cached blocks whose hash was dropped to reuse the block, since construction. */
  get numEvictions(): number {
    return this.evictions;
  }

  refCount(blockId: number): number {
    return this.refCounts[blockId];
  }

  blockHash(blockId: number): BlockHash | undefined {
    return this.hashes[blockId];
  }

  isFree(blockId: number): boolean {
    return this.freeQueue.has(blockId);
  }

  /** Free block ids, next to be reused first. */
  freeBlockIds(): number[] {
    return this.freeQueue.toArray();
  }

  getCachedBlock(hash: BlockHash): number | undefined {
    return this.cachedBlocks.get(hash);
  }

  /** Takes n blocks from the head of the free queue, evicting any cached content; each gets ref count 1. */
  getNewBlocks(n: number): number[] {
    if (n > this.freeQueue.length) {
      throw new Error(`BlockPool: asked for ${n} blocks, only ${this.freeQueue.length} free`);
    }
    const blocks: number[] = [];
    for (let i = 0; i < n; i++) {
      const id = this.freeQueue.popLeft();
      const hash = this.hashes[id];
      if (hash !== undefined) {
        this.cachedBlocks.delete(hash);
        this.hashes[id] = undefined;
        this.evictions++;
      }
      this.refCounts[id] = 1;
      blocks.push(id);
    }
    return blocks;
  }

  /** Takes a reference on blocks found by a prefix hit; a free one leaves the free queue. */
  touch(blockIds: readonly number[]): void {
    for (const id of blockIds) {
      if (this.refCounts[id] === 0) this.freeQueue.remove(id);
      this.refCounts[id]++;
    }
  }

  /**
   * Drops one reference from each block. Pass a sequence's blocks last-first: cached blocks that reach
   * ref count 0 are appended in that order, so a sequence's tail is evicted before its (more shared) head.
   */
  freeBlocks(blockIds: readonly number[]): void {
    for (const id of blockIds) {
      if (this.refCounts[id] <= 0) throw new Error(`BlockPool: block ${id} freed more times than taken`);
      this.refCounts[id]--;
      if (this.refCounts[id] > 0) continue;
      if (this.hashes[id] === undefined) this.freeQueue.prepend(id);
      else this.freeQueue.append(id);
    }
  }

  /**
   * Registers blockIds[from..to) as holding the full blocks whose hashes are hashes[from..to). A block
   * already cached (a prefix hit) is skipped. If another block already holds the same content (two
   * requests computed it at once), this one stays uncached: the map keeps one block per hash.
   */
  cacheFullBlocks(blockIds: readonly number[], hashes: readonly BlockHash[], from: number, to: number): void {
    for (let i = from; i < to; i++) {
      const id = blockIds[i];
      const existing = this.hashes[id];
      if (existing !== undefined) {
        if (existing !== hashes[i]) throw new Error(`BlockPool: block ${id} is cached under another hash`);
        continue;
      }
      if (this.cachedBlocks.has(hashes[i])) continue;
      this.hashes[id] = hashes[i];
      this.cachedBlocks.set(hashes[i], id);
    }
  }
}
