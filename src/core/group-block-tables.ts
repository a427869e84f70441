import type { BlockPool } from "./block-pool.js";
import { NULL_BLOCK } from "./block-pool.js";
import type { Request } from "./request.js";

/**
 * One KV cache group's block tables over the shared BlockPool (vLLM's FullAttentionManager and
 * SlidingWindowManager in one class: window 0 is full attention). A window group's table names the null block
 * where the blocks that left the window were: a query at position p reads keys p − window + 1 … p only, so once
 * the request's computed tokens have moved on, the blocks before the first such key go back to the pool (cached
 * ones stay findable until evicted, as any freed block does).
 */
export class GroupBlockTables {
  private readonly tables = new Map<string, number[]>();
  /** Per request: how many leading blocks of its table are registered in the prefix cache. */
  private readonly numCachedBlocks = new Map<string, number>();

  constructor(
    readonly id: number,
    readonly window: number,
    private readonly pool: BlockPool,
    private readonly blockSize: number,
  ) {}

  get(requestId: string): readonly number[] | undefined {
    return this.tables.get(requestId);
  }

  /**
   * The first block that a query after numComputedTokens tokens still reads: the one holding position
   * numComputedTokens − window + 1 (0 for full attention).
   */
  firstUsefulBlock(numComputedTokens: number): number {
    if (this.window === 0) return 0;
    return Math.floor(Math.max(0, numComputedTokens - this.window + 1) / this.blockSize);
  }

  /** Gives back the blocks before firstUsefulBlock, last first, and puts the null block in their place. */
  removeSkippedBlocks(requestId: string, numComputedTokens: number): void {
    const table = this.tables.get(requestId);
    if (table === undefined) return;
    const { from, to } = this.skippedRange(table, numComputedTokens);
    this.pool.freeBlocks(table.slice(from, to).reverse());
    table.fill(NULL_BLOCK, from, to);
  }

  /**
   * Blocks the pool must supply for the request to hold numTokens tokens, after numComputedTokens: new ones, and
   * the free cached blocks of `hit` (a prefix hit, for a request with no table yet), which leave the free queue
   * too; less the blocks that left the window and go back to the pool first.
   */
  numBlocksToAllocate(
    requestId: string,
    numTokens: number,
    numComputedTokens: number,
    hit: readonly number[],
  ): number {
    const table = this.tables.get(requestId) ?? [];
    let n = Math.max(Math.ceil(numTokens / this.blockSize) - table.length - hit.length, 0);
    for (const id of hit) if (id !== NULL_BLOCK && this.pool.refCount(id) === 0) n++;
    const { from, to } = this.skippedRange(table, numComputedTokens);
    for (let i = from; i < to; i++) if (this.pool.refCount(table[i]) === 1) n--;
    return n;
  }

  /**
   * Starts a request's table with its prefix hit (null blocks where the window no longer reaches), taking a
   * reference on each hit block. Every group takes its hits before any group takes new blocks, so that no new
   * block is a free cached block another group has just been promised.
   */
  addHit(requestId: string, hit: readonly number[]): void {
    if (this.tables.has(requestId))
      throw new Error(`GroupBlockTables: request ${requestId} already has a table`);
    this.pool.touch(hit);
    this.tables.set(requestId, [...hit]);
    this.numCachedBlocks.set(requestId, hit.length);
  }

  /** Extends the request's table with new blocks until it holds numTokens tokens; returns them. */
  allocateNew(requestId: string, numTokens: number): number[] {
    const table = this.tables.get(requestId);
    if (table === undefined) throw new Error(`GroupBlockTables: request ${requestId} has no table`);
    const blocks = this.pool.getNewBlocks(Math.max(Math.ceil(numTokens / this.blockSize) - table.length, 0));
    for (const id of blocks) table.push(id);
    return blocks;
  }

  /**
   * The table entries [from, to) still holding blocks that no query after numComputedTokens reads: those before
   * firstUsefulBlock back to the last null block (the ones before it went at an earlier step).
   */
  private skippedRange(table: readonly number[], numComputedTokens: number): { from: number; to: number } {
    const to = Math.min(this.firstUsefulBlock(numComputedTokens), table.length);
    let from = to;
    while (from > 0 && table[from - 1] !== NULL_BLOCK) from--;
    return { from, to };
  }

  /** Registers the full blocks of the request's first numTokens tokens that are not registered yet. */
  cacheFullBlocks(request: Request, numTokens: number): void {
    const table = this.tables.get(request.id);
    if (table === undefined) return;
    const from = this.numCachedBlocks.get(request.id) ?? 0;
    const to = Math.floor(numTokens / this.blockSize);
    if (to <= from) return;
    this.pool.cacheFullBlocks(this.id, table, request.blockHashes, from, to, {
      tokenIds: request.allTokenIds,
      blockSize: this.blockSize,
      cacheSalt: request.cacheSalt,
    });
    this.numCachedBlocks.set(request.id, to);
  }

  /** Returns the request's blocks to the pool, last first, so its tail is evicted before its (more shared) head. */
  free(requestId: string): void {
    const table = this.tables.get(requestId);
    if (table === undefined) return;
    this.pool.freeBlocks(table.slice().reverse());
    this.tables.delete(requestId);
    this.numCachedBlocks.delete(requestId);
  }
}
