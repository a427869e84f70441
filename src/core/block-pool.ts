import type { BlockHash } from "./block-hash.js";
import { FreeBlockQueue } from "./free-block-queue.js";
import type { BlockContent, KvEventSink } from "./kv-events.js";

/**
 * Block 0 holds nothing: a window group's block table names it where the blocks that left the window were
 * (vLLM's null block). It is never free, never cached, never counted.
 */
export const NULL_BLOCK = 0;

/**
 * All KV cache blocks: which are in use (ref count = number of block tables holding the block), which
 * are free, and which hold a cached full block of a KV cache group ((group, hash) → block id).
 *
 * Every block with ref count 0 is in the free queue, in reuse order: blocks with no cached content at the
 * head (reused first), cached ones behind them in least-recently-freed order.
 * A cached block keeps its hash while it waits in the queue, so a prefix hit can take it back; it loses
 * the hash only when it is reused (evicted).
 */
export class BlockPool {
  /** Blocks in the cache, the null block included. */
  readonly numBlocks: number;
  private readonly refCounts: Int32Array;
  private readonly hashes: (BlockHash | undefined)[];
  /** The group whose map holds each cached block. */
  private readonly cachedGroup: Int32Array;
  /** Per KV cache group: hash → block id. Groups cache apart: the same tokens are other layers' K/V there. */
  private readonly cachedBlocks: Map<BlockHash, number>[] = [];
  private readonly freeQueue: FreeBlockQueue;
  private evictions = 0;

  constructor(
    numBlocks: number,
    /** Told of every block that enters or leaves the prefix cache (KV cache events). */
    private readonly onEvent?: KvEventSink,
  ) {
    if (!Number.isInteger(numBlocks) || numBlocks < 2) {
      throw new RangeError(
        `BlockPool: numBlocks must be an integer ≥ 2 (the null block and one more), got ${numBlocks}`,
      );
    }
    this.numBlocks = numBlocks;
    this.refCounts = new Int32Array(numBlocks);
    this.hashes = new Array<BlockHash | undefined>(numBlocks).fill(undefined);
    this.cachedGroup = new Int32Array(numBlocks);
    const ids = Array.from({ length: numBlocks - 1 }, (_, i) => i + 1);
    this.freeQueue = new FreeBlockQueue(numBlocks, ids);
  }

  /** Blocks that can hold K/V: all but the null block. */
  get numUsableBlocks(): number {
    return this.numBlocks - 1;
  }

  /** Free blocks, cached ones included (they can be evicted). */
  get numFreeBlocks(): number {
    return this.freeQueue.length;
  }

  /** Fraction of the usable blocks in use. */
  get usage(): number {
    return 1 - this.freeQueue.length / this.numUsableBlocks;
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

  getCachedBlock(group: number, hash: BlockHash): number | undefined {
    return this.cachedBlocks[group]?.get(hash);
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
        this.cachedBlocks[this.cachedGroup[id]].delete(hash);
        this.hashes[id] = undefined;
        this.evictions++;
        this.onEvent?.({ type: "BlockRemoved", group: this.cachedGroup[id], blockHashes: [hash] });
      }
      this.refCounts[id] = 1;
      blocks.push(id);
    }
    return blocks;
  }

  /** Takes a reference on blocks found by a prefix hit; a free one leaves the free queue. */
  touch(blockIds: readonly number[]): void {
    for (const id of blockIds) {
      if (id === NULL_BLOCK) continue;
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
      if (id === NULL_BLOCK) continue;
      if (this.refCounts[id] <= 0) throw new Error(`BlockPool: block ${id} freed more times than taken`);
      this.refCounts[id]--;
      if (this.refCounts[id] > 0) continue;
      if (this.hashes[id] === undefined) this.freeQueue.prepend(id);
      else this.freeQueue.append(id);
    }
  }

  /**
   * Registers blockIds[from..to) as holding group `group`'s full blocks whose hashes are hashes[from..to). A
   * block already cached (a prefix hit) and the null block are skipped. If another block already holds the same
   * content (two requests computed it at once), this one stays uncached: the map keeps one block per hash.
   * `content` (the sequence's tokens) goes into the BlockStored events, one per run of blocks newly cached.
   */
  cacheFullBlocks(
    group: number,
    blockIds: readonly number[],
    hashes: readonly BlockHash[],
    from: number,
    to: number,
    content?: BlockContent,
  ): void {
    // Checked before anything changes, so that a refused call leaves the pool as it was.
    for (let i = from; i < to; i++) {
      const id = blockIds[i];
      const existing = this.hashes[id];
      if (
        id !== NULL_BLOCK &&
        existing !== undefined &&
        (existing !== hashes[i] || this.cachedGroup[id] !== group)
      )
        throw new Error(`BlockPool: block ${id} is cached under another hash or group`);
    }
    this.cachedBlocks[group] ??= new Map();
    const cached = this.cachedBlocks[group];
    let runStart = from;
    for (let i = from; i < to; i++) {
      const id = blockIds[i];
      if (id === NULL_BLOCK || this.hashes[id] !== undefined || cached.has(hashes[i])) {
        this.reportStored(group, hashes, runStart, i, content);
        runStart = i + 1;
        continue;
      }
      this.hashes[id] = hashes[i];
      this.cachedGroup[id] = group;
      cached.set(hashes[i], id);
    }
    this.reportStored(group, hashes, runStart, to, content);
  }

  /** One BlockStored event for the blocks [from, to) of a sequence, just cached. */
  private reportStored(
    group: number,
    hashes: readonly BlockHash[],
    from: number,
    to: number,
    content: BlockContent | undefined,
  ): void {
    if (this.onEvent === undefined || from >= to) return;
    if (content === undefined) throw new Error("BlockPool: KV cache events need the cached blocks' content");
    const { tokenIds, blockSize, cacheSalt } = content;
    this.onEvent({
      type: "BlockStored",
      group,
      blockHashes: hashes.slice(from, to),
      parentBlockHash: from === 0 ? null : hashes[from - 1],
      tokenIds: tokenIds.slice(from * blockSize, to * blockSize),
      blockSize,
      extraKeys: Array.from({ length: to - from }, (_, k) =>
        from + k === 0 && cacheSalt !== undefined ? [cacheSalt] : null,
      ),
    });
  }
}
