/**
 * How many KV cache blocks a memory budget buys. The budget comes from --kv-cache-memory, or from a fraction
 * of the memory left: the caller measures memory (os.freemem() and the cgroup's files, outside core/) and
 * passes the numbers in.
 */

import type { KvCacheDtype } from "../backend/backend.js";
import { formatBytes } from "../util/byte-size.js";

const DTYPE_BYTES: Record<KvCacheDtype, number> = { f32: 4, f16: 2 };

/** The model dimensions the KV cache size depends on (a ModelConfig has them). */
export interface KvCacheShape {
  nLayers: number;
  nKvHeads: number;
  headDim: number;
}

/** K and V, every layer: 2 × layers × kvHeads × headDim × bytes per element. */
export function kvBytesPerToken(shape: KvCacheShape, dtype: KvCacheDtype): number {
  return 2 * shape.nLayers * shape.nKvHeads * shape.headDim * DTYPE_BYTES[dtype];
}

/**
 * One block: K and V of blockSize tokens in each of the layers a block holds (every layer, or a KV cache group's
 * share of them: kv-cache-groups.ts).
 */
export function kvBytesPerBlock(
  shape: KvCacheShape,
  layersPerBlock: number,
  blockSize: number,
  dtype: KvCacheDtype,
): number {
  return kvBytesPerToken({ ...shape, nLayers: layersPerBlock }, dtype) * blockSize;
}

/** Memory as the machine reports it, measured once the backend holds its weights. */
export interface MemoryView {
  /** os.freemem(): Linux's MemAvailable, which counts the page cache, mapped weights included, as free. */
  freeBytes: number;
  /** The process's cgroup memory limit and what it holds (page cache it can drop left out), when it has one. */
  cgroup?: { limitBytes: number; usedBytes: number };
}

export interface KvBudget {
  bytes: number;
  /** How the budget was derived, for the startup line: "30% of (11.2 GiB free − 3.9 GiB of mapped weights)". */
  derivation: string;
}

/**
 * The KV budget when none is given: `fraction` of the memory left for it. That is the free memory, or what
 * the cgroup limit leaves when that is less, minus the weights that will become resident: those the backend
 * reads in place from a memory-mapped file (`mappedWeightBytes`), which free memory counts as free until they
 * are read. Weights already copied into process memory are out of the free figure already.
 */
export function defaultKvBudget(memory: MemoryView, mappedWeightBytes: number, fraction: number): KvBudget {
  if (!(fraction > 0 && fraction <= 1))
    throw new RangeError(`invalid memory fraction ${fraction}: must be in (0, 1]`);
  const cgroup = memory.cgroup;
  const underLimit = cgroup ? Math.max(0, cgroup.limitBytes - cgroup.usedBytes) : Infinity;
  const available = Math.min(memory.freeBytes, underLimit);
  const where =
    cgroup && underLimit < memory.freeBytes
      ? `${formatBytes(available)} left under the cgroup limit of ${formatBytes(cgroup.limitBytes)}`
      : `${formatBytes(available)} free`;
  const bytes = Math.floor(fraction * (available - mappedWeightBytes));
  if (bytes < 1) {
    throw new RangeError(
      `no memory left for the KV cache: ${where}, and the model's memory-mapped weights need ${formatBytes(mappedWeightBytes)}; ` +
        "set the budget with --kv-cache-memory if you know better",
    );
  }
  const percent = `${+(fraction * 100).toFixed(1)}%`;
  return {
    bytes,
    derivation: `${percent} of (${where} − ${formatBytes(mappedWeightBytes)} of mapped weights)`,
  };
}

/**
 * Whole blocks of blockBytes (blockSize tokens) that fit in budgetBytes, the null block included (block-pool.ts):
 * at least two are needed.
 */
export function numBlocksForBudget(budgetBytes: number, blockBytes: number, blockSize: number): number {
  const numBlocks = Math.floor(budgetBytes / blockBytes);
  if (numBlocks < 2) {
    throw new RangeError(
      `KV cache budget ${formatBytes(budgetBytes)} is too small: one block of ${blockSize} tokens takes ${formatBytes(blockBytes)}, and the cache needs two (one is the null block)`,
    );
  }
  return numBlocks;
}
