import { appendBlockHashes, type BlockHash } from "./block-hash.js";
import { BlockPool, NULL_BLOCK } from "./block-pool.js";
import { GroupBlockTables } from "./group-block-tables.js";
import { maxBlocksPerRequest } from "./kv-cache-groups.js";
import type { KvEventSink } from "./kv-events.js";
import type { Request } from "./request.js";

/**
 * "paged": blocks are allocated as a sequence grows. "contiguous": a request's first allocation reserves
 * blocks for maxModelLen tokens, as servers without paging do (the baseline that measures what paging buys).
 */
export type KvAllocation = "paged" | "contiguous";

export interface KVCacheManagerOptions {
  /** Blocks in the cache, the null block included. */
  numBlocks: number;
  maxModelLen: number;
  /** Tokens per block; 16 by default. */
  blockSize?: number;
  /** On by default; always off with contiguous allocation. */
  enablePrefixCaching?: boolean;
  allocation?: KvAllocation;
  /**
   * Per KV cache group (kv-cache-groups.ts), its layers' attention window; 0 = full attention. Default: one
   * full-attention group.
   */
  groupWindows?: readonly number[];
  /**
   * The most tokens of one request a step computes (the scheduler's token budget): a window group holds the
   * window plus such a chunk at once. Default: maxModelLen.
   */
  maxChunkTokens?: number;
  /** Told of every block that enters or leaves the prefix cache (vLLM's KV cache events). */
  onKvEvent?: KvEventSink;
}

/**
 * A cached prefix of a request: whole blocks, numComputedTokens = blocks × blockSize in every group. Per group,
 * its blocks; a window group has the null block where the window no longer reaches.
 */
export interface ComputedBlocks {
  blocks: readonly (readonly number[])[];
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

const emptyStats = (): PrefixCacheStats => ({
  requests: 0,
  queries: 0,
  hits: 0,
  preemptedRequests: 0,
  preemptedQueries: 0,
  preemptedHits: 0,
});

/**
 * The scheduler's view of the KV cache: per-request block tables over one BlockPool, one table per KV cache
 * group (a window group gives back what left its window), prefix-cache lookups and caching of full blocks.
 * It knows tokens and blocks, never tensors.
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
  readonly maxChunkTokens: number;
  readonly blockPool: BlockPool;
  readonly groups: readonly GroupBlockTables[];
  /** The groups of each window, full attention (0) first: a prefix hit must be cached in all of them. */
  private readonly groupsByWindow = new Map<number, GroupBlockTables[]>();
  private readonly noHit: ComputedBlocks;
  private stats = emptyStats();

  constructor(o: KVCacheManagerOptions) {
    this.blockSize = o.blockSize ?? 16;
    this.maxModelLen = o.maxModelLen;
    this.maxChunkTokens = o.maxChunkTokens ?? o.maxModelLen;
    this.allocation = o.allocation ?? "paged";
    this.prefixCaching = (o.enablePrefixCaching ?? true) && this.allocation === "paged";
    for (const [name, value] of [
      ["blockSize", this.blockSize],
      ["maxModelLen", this.maxModelLen],
      ["maxChunkTokens", this.maxChunkTokens],
    ] as const) {
      if (!Number.isInteger(value) || value < 1) {
        throw new RangeError(`KVCacheManager: ${name} must be a positive integer, got ${value}`);
      }
    }
    const windows = o.groupWindows ?? [0];
    if (windows.length === 0)
      throw new RangeError("KVCacheManager: groupWindows must name at least one group");
    if (this.allocation === "contiguous" && windows.some((w) => w !== 0))
      throw new RangeError(
        "KVCacheManager: contiguous allocation keeps every block: its groups are full attention",
      );
    this.blockPool = new BlockPool(o.numBlocks, o.onKvEvent);
    this.groups = windows.map((w, id) => new GroupBlockTables(id, w, this.blockPool, this.blockSize));
    for (const g of [...this.groups].sort((a, b) => a.window - b.window)) {
      this.groupsByWindow.set(g.window, [...(this.groupsByWindow.get(g.window) ?? []), g]);
    }
    this.noHit = { blocks: windows.map(() => []), numComputedTokens: 0 };
  }

  /** Fraction of the usable blocks in use. */
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
    const windows = this.groups.map((g) => g.window);
    const blocksNeeded = maxBlocksPerRequest(windows, reserved, this.blockSize, this.maxChunkTokens);
    const numBlocks = this.blockPool.numUsableBlocks;
    if (blocksNeeded > numBlocks) {
      return `request needs ${blocksNeeded} KV cache blocks (${reserved} tokens, ${this.allocation} allocation) but the whole KV cache has ${numBlocks} blocks of ${this.blockSize} tokens`;
    }
    return undefined;
  }

  /**
   * The longest prefix of the request's full blocks that every group has cached (vLLM's hybrid coordinator): a
   * full-attention group needs every block of the prefix, a window group only those its next query reads. Hit
   * lengths shrink until all windows agree. It never covers the whole sequence: at least one token is left to
   * compute, to produce logits. Takes no reference; pass the result to allocateSlots before any other allocation
   * can evict the blocks.
   */
  getComputedBlocks(request: Request): ComputedBlocks {
    if (!this.readsPrefixCache(request)) return this.noHit;
    appendBlockHashes(request.blockHashes, request.allTokenIds, this.blockSize, request.cacheSalt);
    let numBlocks = Math.floor((request.numTokens - 1) / this.blockSize);
    for (let shrunk = true; shrunk; ) {
      shrunk = false;
      for (const [window, groups] of this.groupsByWindow) {
        const hit = this.longestHit(window, groups, request.blockHashes, numBlocks);
        if (hit < numBlocks) {
          numBlocks = hit;
          // A full group's hit holds at any shorter length; a window's must be searched again.
          shrunk = this.groupsByWindow.size > 1;
        }
      }
    }
    const blocks = this.groups.map((g) => {
      const hashes = request.blockHashes;
      const first = Math.min(g.firstUsefulBlock(numBlocks * this.blockSize), numBlocks);
      const ids = new Array<number>(numBlocks).fill(NULL_BLOCK);
      for (let i = first; i < numBlocks; i++)
        ids[i] = this.blockPool.getCachedBlock(g.id, hashes[i]) as number;
      return ids;
    });
    return { blocks, numComputedTokens: numBlocks * this.blockSize };
  }

  /**
   * Makes room for numNewTokens more tokens after the request's computed ones (plus `computed`, a prefix
   * hit from getComputedBlocks, for a request holding no blocks yet). Window groups give back the blocks that
   * left the window first. Returns the newly allocated block ids per group, or null, changing nothing, when the
   * pool cannot supply them: the caller decides what to preempt.
   */
  allocateSlots(request: Request, numNewTokens: number, computed?: ComputedBlocks): number[][] | null {
    const hit = computed ?? this.noHit;
    const holdsBlocks = this.groups[0].get(request.id) !== undefined;
    if (holdsBlocks && hit.numComputedTokens > 0) {
      throw new Error(
        `KVCacheManager: prefix hit passed for request ${request.id}, which already holds blocks`,
      );
    }
    const numComputed = request.numComputedTokens + hit.numComputedTokens;
    const numTokens = numComputed + numNewTokens;
    if (numTokens > this.maxModelLen) {
      throw new RangeError(
        `KVCacheManager: request ${request.id} would reach ${numTokens} tokens, over maxModelLen ${this.maxModelLen}`,
      );
    }
    const slotsNeeded = this.allocation === "contiguous" ? this.maxModelLen : numTokens;
    let numNewBlocks = 0;
    for (const g of this.groups)
      numNewBlocks += g.numBlocksToAllocate(request.id, slotsNeeded, numComputed, hit.blocks[g.id]);
    if (numNewBlocks > this.blockPool.numFreeBlocks) return null;

    // What left the window is never read again: it goes back before new blocks are taken.
    for (const g of this.groups) g.removeSkippedBlocks(request.id, numComputed);
    if (!holdsBlocks) {
      if (this.readsPrefixCache(request)) this.recordLookup(request, hit);
      for (const g of this.groups) g.addHit(request.id, hit.blocks[g.id]);
    }
    const newBlocks = this.groups.map((g) => g.allocateNew(request.id, slotsNeeded));
    if (this.prefixCaching) {
      appendBlockHashes(request.blockHashes, request.allTokenIds, this.blockSize, request.cacheSalt);
      for (const g of this.groups) g.cacheFullBlocks(request, Math.min(numTokens, request.numTokens));
    }
    return newBlocks;
  }

  /**
   * A request that asks for its prompt's log-probs computes its whole prompt, as in vLLM: cached blocks would
   * skip positions whose logits it needs. Its own full blocks are still cached for others.
   */
  private readsPrefixCache(request: Request): boolean {
    return this.prefixCaching && request.samplingParams.promptLogprobs === undefined;
  }

  /** Returns the request's blocks to the pool; cached ones stay findable until evicted. */
  free(request: Request): void {
    for (const g of this.groups) g.free(request.id);
  }

  /** The request's block tables, one per group: block ids holding its tokens in order (null: left the window). */
  getBlockIds(requestId: string): readonly (readonly number[])[] {
    return this.groups.map((g) => g.get(requestId) ?? []);
  }

  /**
   * The longest hit, in blocks, of at most maxBlocks that all `groups` (of one window) have cached. Full
   * attention: the leading run of cached blocks. A window: the longest h whose last blocks, those a query at
   * h · blockSize reads (window − 1 tokens back), are all cached; searched from the right, as vLLM does.
   */
  private longestHit(
    window: number,
    groups: readonly GroupBlockTables[],
    hashes: readonly BlockHash[],
    maxBlocks: number,
  ): number {
    const cached = (i: number) =>
      groups.every((g) => this.blockPool.getCachedBlock(g.id, hashes[i]) !== undefined);
    if (window === 0) {
      let n = 0;
      while (n < maxBlocks && cached(n)) n++;
      return n;
    }
    const needed = Math.ceil((window - 1) / this.blockSize);
    if (needed === 0) return maxBlocks;
    let run = 0;
    for (let i = maxBlocks - 1; i >= 0; i--) {
      run = cached(i) ? run + 1 : 0;
      if (run === needed) return i + needed;
    }
    return run; // blocks 0 … run − 1: the window reaches back past the first token
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
