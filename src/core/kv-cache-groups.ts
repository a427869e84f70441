import type { KvCacheLayerGroup } from "../backend/backend.js";

/**
 * KV cache groups (vLLM v1's hybrid allocator): layers with the same attention window share block tables, so a
 * sliding-window layer can give back the blocks that left its window while a full-attention layer keeps them all.
 *
 * Every group has the same number of layers, k. One block id of the shared pool then stands for the same memory
 * in any group: k "slot layers" of blockSize tokens each. Layer i of every group lives in slot layer i; a block is
 * owned by one group at a time, so the groups never write each other's rows. k is the greatest common divisor of
 * the layer counts per window, so no group needs padding layers: Gemma 3 1B's 4 full and 22 window layers make 13
 * groups of 2.
 */

export interface KvCacheGroup extends KvCacheLayerGroup {
  /** The attention window of every layer of the group (keys p − window + 1 … p); 0 = full attention. */
  window: number;
  layers: number[];
}

/**
 * The groups of a model's layers. With `hybrid` off (vLLM's --disable-hybrid-kv-cache-manager, or contiguous
 * allocation) every layer is in one full-attention group: each layer keeps every block of its sequence, and
 * window layers only mask what they do not read.
 */
export function kvCacheGroups(layerWindows: readonly number[], hybrid: boolean): KvCacheGroup[] {
  if (layerWindows.length === 0) throw new RangeError("kvCacheGroups: a model has at least one layer");
  if (!hybrid) return [{ window: 0, layers: layerWindows.map((_, l) => l) }];
  const byWindow = new Map<number, number[]>();
  layerWindows.forEach((window, l) => {
    if (!Number.isInteger(window) || window < 0)
      throw new RangeError(`kvCacheGroups: layer ${l} has window ${window}; a window is an integer ≥ 0`);
    byWindow.set(window, [...(byWindow.get(window) ?? []), l]);
  });
  const size = [...byWindow.values()].reduce((k, layers) => gcd(k, layers.length), 0);
  // Full attention first, then windows from the narrowest.
  const windows = [...byWindow.keys()].sort((a, b) => a - b);
  const groups: KvCacheGroup[] = [];
  for (const window of windows) {
    const layers = byWindow.get(window) as number[];
    for (let i = 0; i < layers.length; i += size) groups.push({ window, layers: layers.slice(i, i + size) });
  }
  return groups;
}

/** Layers per group: how many layers' K/V one block holds. */
export function layersPerBlock(groups: readonly KvCacheGroup[]): number {
  return groups[0].layers.length;
}

/**
 * The most blocks a request of numTokens tokens holds at once, over groups of these windows, when a step computes
 * at most maxChunkTokens of its tokens. A full group holds a block per blockSize tokens. A window group holds the
 * blocks its next queries reach back to (window − 1 tokens), the chunk's own, and one more where the window starts
 * inside a block (vLLM's SlidingWindowSpec bound), never more than a full group.
 */
export function maxBlocksPerRequest(
  windows: readonly number[],
  numTokens: number,
  blockSize: number,
  maxChunkTokens: number,
): number {
  const all = Math.ceil(numTokens / blockSize);
  let n = 0;
  for (const w of windows)
    n += w === 0 ? all : Math.min(all, Math.ceil((w - 1 + maxChunkTokens) / blockSize) + 1);
  return n;
}

function gcd(a: number, b: number): number {
  return b === 0 ? a : gcd(b, a % b);
}
