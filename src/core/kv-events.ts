import type { BlockHash } from "./block-hash.js";

/**
 * A change to the set of cached blocks, as vLLM reports it to KV-cache-aware routers (llm-d's precise
 * prefix-cache scorer): full blocks entering the prefix cache and leaving it. A subscriber that applies every
 * event in order holds exactly the pool's set of cached (group, hash) pairs.
 */
export type KvCacheEvent =
  | {
      type: "BlockStored";
      /** The KV cache group whose map holds the blocks. */
      group: number;
      /** A run of consecutive blocks of one sequence, in order. */
      blockHashes: BlockHash[];
      /** The hash of the block before the run; null for a run that starts the sequence. */
      parentBlockHash: BlockHash | null;
      /** The run's tokens: blockHashes.length × blockSize. */
      tokenIds: number[];
      blockSize: number;
      /** Per block, the extra keys its hash took (the cache salt, first block only); null for none. */
      extraKeys: (string[] | null)[];
    }
  | { type: "BlockRemoved"; group: number; blockHashes: BlockHash[] }
  | { type: "AllBlocksCleared" };

export type KvEventSink = (event: KvCacheEvent) => void;

/** What a run of cached blocks holds: the sequence's tokens, so that a BlockStored event can carry them. */
export interface BlockContent {
  tokenIds: readonly number[];
  blockSize: number;
  cacheSalt: string | undefined;
}
