import type { KvCacheDtype } from "../backend/backend.js";
import type { KvCacheGroup } from "../core/kv-cache-groups.js";
import type { KvAllocation } from "../core/kv-cache-manager.js";
import type { SchedulerConfig } from "../core/scheduler.js";

/** Everything that shapes one engine: the scheduler's limits and the KV cache's geometry. One typed object. */
export interface EngineConfig extends SchedulerConfig {
  /** KV cache blocks, the null block included. */
  numBlocks: number;
  /** The model's layers in KV cache groups (kv-cache-groups.ts): which keep every block, which a window. */
  kvCacheGroups: readonly KvCacheGroup[];
  blockSize: number;
  /** Element type of the cached K and V: f16 holds twice the tokens in the same memory, rounding K/V. */
  kvCacheDtype: KvCacheDtype;
  enablePrefixCaching: boolean;
  kvAllocation: KvAllocation;
}

export const defaultEngineConfig = {
  blockSize: 16,
  kvCacheDtype: "f32",
  maxNumSeqs: 256,
  maxNumBatchedTokens: 2048,
  longPrefillTokenThreshold: 0,
  policy: "fcfs",
  batching: "continuous",
  enablePrefixCaching: true,
  kvAllocation: "paged",
} as const satisfies Partial<EngineConfig>;
