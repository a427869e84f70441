import { appendBlockHashes } from "./block-hash.js";
import { BlockPool } from "./block-pool.js";
import type { Request } from "./request.js";

/**
 * "paged": blocks are allocated as a sequence grows. "contiguous": a request's first allocation reserves
 * blocks for maxModelLen tokens, as servers without paging do (the baseline that measures what paging buys).
 */
export type KvAllocation = "paged" | "contiguous";

export interface KVCacheManagerOptions {
  /** Blocks in the cache. */
  numBlocks: number;
  maxModelLen: number;
  /** Tokens per block; 16 by default. */
  blockSize?: number;
  /** On by default; always off with contiguous allocation. */
  enablePrefixCaching?: boolean;
  allocation?: KvAllocation;
}

/** A cached prefix of a request: whole blocks, numComputedTokens = blocks.length × blockSize. */
export interface ComputedBlocks {
  blocks: readonly number[];
  numComputedTokens: number;
}

/**
 * Prefix cache lookups, counted once per admission, in tokens. Requests resuming after preemption are
 * counted apart, so recomputing one's own evicted work does not read as reuse.
 */
export interface PrefixCacheStats {
  requests: number;
  queries: number;
  hits: number;
  preemptedRequests: number;
  preemptedQueries: number;
  preemptedHits: number;
}

const NO_COMPUTED_BLOCKS: ComputedBlocks = { blocks: [], numComputedTokens: 0 };

const emptyStats = (): PrefixCacheStats => ({
  requests: 0,
  queries: 0,
  hits: 0,
  preemptedRequests: 0,
  preemptedQueries: 0,
  preemptedHits: 0,
});

/**
 * The scheduler's view of the KV cache: per-request block tables over one BlockPool, prefix-cache lookups
 * and caching of full blocks. It knows tokens and blocks, never tensors.
 *
 * Blocks are cached when the scheduled tokens fill them, before the forward pass that writes them has
 * run (as vLLM does). That is safe because a request that hits such a block runs in the same step or a
 * later one, and the backend writes every token's K/V of a layer before computing that layer's attention.
 */
export class KVCacheManager {
  readonly blockSize: number;
  readonly maxModelLen: number;
  readonly allocation: KvAllocation;
  readonly prefixCaching: boolean;
  readonly blockPool: BlockPool;
  private readonly blockTables = new Map<string, number[]>();
  /** Per request: how many leading blocks of its table are registered in the prefix cache. */
  private readonly numCachedBlocks = new Map<string, number>();
  private stats = emptyStats();

  constructor(o: KVCacheManagerOptions) {
    this.blockSize = o.blockSize ?? 16;
    this.maxModelLen = o.maxModelLen;
    this.allocation = o.allocation ?? "paged";
    this.prefixCaching = (o.enablePrefixCaching ?? true) && this.allocation === "paged";
    for (const [name, value] of [
      ["blockSize", this.blockSize],
      ["maxModelLen", this.maxModelLen],
    ] as const) {
      if (!Number.isInteger(value) || value < 1) {
        throw new RangeError(`KVCacheManager: ${name} must be a positive integer, got ${value}`);
      }
    }
    this.blockPool = new BlockPool(o.numBlocks);
  }

  /** Fraction of the blocks in use. */
  get usage(): number {
    return this.blockPool.usage;
  }

  get prefixCacheStats(): Readonly<PrefixCacheStats> {
    return { ...this.stats };
  }

  resetPrefixCacheStats(): void {
    this.stats = emptyStats();
  }

  /**
   * Why a request with this prompt and token limit can never run, or undefined if it can. The scheduler
   * rejects such a request at admission instead of letting it fail later.
   */
  admissionError(numPromptTokens: number, maxTokens: number): string | undefined {
    const numTokens = numPromptTokens + maxTokens;
    if (numPromptTokens < 1) return "the prompt is empty";
    if (numTokens > this.maxModelLen) {
      return `prompt (${numPromptTokens} tokens) + max tokens (${maxTokens}) = ${numTokens} exceeds maxModelLen ${this.maxModelLen}`;
    }
    const reserved = this.allocation === "contiguous" ? this.maxModelLen : numTokens;
    const blocksNeeded = Math.ceil(reserved / this.blockSize);
    const numBlocks = this.blockPool.numBlocks;
    if (blocksNeeded > numBlocks) {
      return `request needs ${blocksNeeded} KV cache blocks (${reserved} tokens, ${this.allocation} allocation) but the whole KV cache has ${numBlocks} blocks of ${this.blockSize} tokens`;
    }
    return undefined;
  }

  /**
   * The longest run of the request's leading full blocks that is in the prefix cache. It never covers
   * the whole sequence: at least one token is left to compute, to produce logits. Takes no reference;
   * pass the result to allocateSlots before any other allocation can evict the blocks.
   */
  getComputedBlocks(request: Request): ComputedBlocks {
    if (!this.prefixCaching) return NO_COMPUTED_BLOCKS;
    appendBlockHashes(request.blockHashes, request.allTokenIds, this.blockSize, request.cacheSalt);
    const maxHitBlocks = Math.floor((request.numTokens - 1) / this.blockSize);
    const blocks: number[] = [];
    for (let i = 0; i < maxHitBlocks; i++) {
      const id = this.blockPool.getCachedBlock(request.blockHashes[i]);
      if (id === undefined) break;
      blocks.push(id);
    }
    return { blocks, numComputedTokens: blocks.length * this.blockSize };
  }

  /**
   * Makes room for numNewTokens more tokens after the request's computed ones (plus `computed`, a prefix
   * hit from getComputedBlocks, for a request holding no blocks yet). Returns the newly allocated block
   * ids, or null, changing nothing, when the pool cannot supply them: the caller decides what to preempt.
   */
  allocateSlots(request: Request, numNewTokens: number, computed = NO_COMPUTED_BLOCKS): number[] | null {
    const table = this.blockTables.get(request.id);
    if (table !== undefined && computed.blocks.length > 0) {
      throw new Error(
        `KVCacheManager: prefix hit passed for request ${request.id}, which already holds blocks`,
      );
    }
    const numTokens = request.numComputedTokens + computed.numComputedTokens + numNewTokens;
    if (numTokens > this.maxModelLen) {
      throw new RangeError(
        `KVCacheManager: request ${request.id} would reach ${numTokens} tokens, over maxModelLen ${this.maxModelLen}`,
      );
    }
    const slotsNeeded = this.allocation === "contiguous" ? this.maxModelLen : numTokens;
    const numHeld = (table?.length ?? 0) + computed.blocks.length;
    const numNewBlocks = Math.max(Math.ceil(slotsNeeded / this.blockSize) - numHeld, 0);
    // A hit on a cached block with ref count 0 takes it out of the free queue too.
    let numFreeHits = 0;
    for (const id of computed.blocks) if (this.blockPool.refCount(id) === 0) numFreeHits++;
    if (numNewBlocks + numFreeHits > this.blockPool.numFreeBlocks) return null;

    if (table === undefined && this.prefixCaching) this.recordLookup(request, computed);
    this.blockPool.touch(computed.blocks);
    const newBlocks = this.blockPool.getNewBlocks(numNewBlocks);
    const blocks = table ?? [];
    for (const id of computed.blocks) blocks.push(id);
    for (const id of newBlocks) blocks.push(id);
    if (table === undefined) {
      this.blockTables.set(request.id, blocks);
      this.numCachedBlocks.set(request.id, computed.blocks.length);
    }
    if (this.prefixCaching) this.cacheFullBlocks(request, blocks, Math.min(numTokens, request.numTokens));
    return newBlocks;
  }

  /** Returns the request's blocks to the pool; cached ones stay findable until evicted. */
  free(request: Request): void {
    const blocks = this.blockTables.get(request.id);
    if (blocks === undefined) return;
    this.blockPool.freeBlocks(blocks.slice().reverse());
    this.blockTables.delete(request.id);
    this.numCachedBlocks.delete(request.id);
  }

  /** The request's block table: block ids holding its tokens in order. */
  getBlockIds(requestId: string): readonly number[] {
    return this.blockTables.get(requestId) ?? [];
  }

  /** Registers the blocks that the first numTokens tokens fill and that are not registered yet. */
  private cacheFullBlocks(request: Request, blocks: readonly number[], numTokens: number): void {
    const from = this.numCachedBlocks.get(request.id) ?? 0;
    const to = Math.floor(numTokens / this.blockSize);
    if (to <= from) return;
    appendBlockHashes(request.blockHashes, request.allTokenIds, this.blockSize, request.cacheSalt);
    this.blockPool.cacheFullBlocks(blocks, request.blockHashes, from, to);
    this.numCachedBlocks.set(request.id, to);
  }

  private recordLookup(request: Request, computed: ComputedBlocks): void {
    if (request.numPreemptions === 0) {
      this.stats.requests++;
      this.stats.queries += request.numTokens;
      this.stats.hits += computed.numComputedTokens;
    } else {
      this.stats.preemptedRequests++;
      this.stats.preemptedQueries += request.numTokens;
      this.stats.preemptedHits += computed.numComputedTokens;
    }
  }
}
