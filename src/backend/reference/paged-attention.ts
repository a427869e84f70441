import { f16ToF32Table, f32ToF16 } from "../../model/float-formats.js";
import type { ForwardBatch, KvCacheDtype } from "../backend.js";

/** One layer's K or V cache: f32 values, or binary16 bits (half the memory). */
export type KvCacheArray = Float32Array | Uint16Array;

export function allocateKvCache(dtype: KvCacheDtype, length: number): KvCacheArray {
  return dtype === "f16" ? new Uint16Array(length) : new Float32Array(length);
}

export interface AttentionDims {
  nHeads: number;
  nKvHeads: number;
  headDim: number;
  blockSize: number;
  /** q·k is multiplied by this; default 1/√headDim. */
  scale?: number;
  /** Scores are soft-capped to ±softcap (c · tanh(s / c)) before the softmax; 0 or absent: not. */
  softcap?: number;
  /** A query at position p sees keys p − window + 1 … p only; 0 or absent: every key up to p. */
  window?: number;
}

/**
 * Stores this step's K and V rows in one layer's paged cache; an f16 cache gets them rounded to nearest-even.
 * k, v: [numTokens, kvDim]; caches: [numBlocks, blockSize, nKvHeads, headDim], so slot s starts at s · kvDim.
 */
export function writeKv(
  kCache: KvCacheArray,
  vCache: KvCacheArray,
  k: Float32Array,
  v: Float32Array,
  slotMapping: Int32Array,
  kvDim: number,
) {
  for (let t = 0; t < slotMapping.length; t++) {
    const dst = slotMapping[t] * kvDim;
    storeRow(kCache, dst, k.subarray(t * kvDim, (t + 1) * kvDim));
    storeRow(vCache, dst, v.subarray(t * kvDim, (t + 1) * kvDim));
  }
}

function storeRow(cache: KvCacheArray, at: number, row: Float32Array) {
  if (cache instanceof Float32Array) cache.set(row, at);
  else for (let i = 0; i < row.length; i++) cache[at + i] = f32ToF16(row[i]);
}

/**
 * Rows of one cache as f32 `values`: an f32 cache is its own values (read in place, no copy); an f16 row is
 * widened into a one-row buffer through the 65536-entry lookup table.
 */
class CacheRows {
  readonly values: Float32Array;
  private readonly f16: { bits: Uint16Array; table: Float32Array } | undefined;

  constructor(cache: KvCacheArray, rowLength: number) {
    if (cache instanceof Float32Array) {
      this.values = cache;
    } else {
      this.values = new Float32Array(rowLength);
      this.f16 = { bits: cache, table: f16ToF32Table() };
    }
  }

  /** Makes the row at `offset` of the cache readable in `values`; returns where it starts there. */
  load(offset: number): number {
    if (this.f16 === undefined) return offset;
    const { bits, table } = this.f16;
    for (let i = 0; i < this.values.length; i++) this.values[i] = table[bits[offset + i]];
    return 0;
  }
}

/**
 * Causal attention for a flat varlen batch, reading K/V (f32, or f16 widened exactly to f32) through each
 * sequence's block table in the layer's KV cache group.
 * q: [numTokens, nHeads, headDim] → out: [numTokens, nHeads · headDim].
 * Token t of sequence s at position p attends to positions 0..p of s (its cached prefix and, causally, the
 * chunk itself: this step's K/V are already written), or with a window w to p − w + 1 … p only: keys before
 * the window are never read (their blocks may have been freed). Position j lives in slot
 * blockTables[group][s][⌊j / blockSize⌋] · blockSize + j mod blockSize. GQA: query head h reads kv head ⌊h / (nHeads / nKvHeads)⌋.
 */
export function pagedAttention(
  q: Float32Array,
  kCache: KvCacheArray,
  vCache: KvCacheArray,
  batch: ForwardBatch,
  group: number,
  d: AttentionDims,
): Float32Array {
  const { nHeads, nKvHeads, headDim, blockSize } = d;
  const scale = d.scale ?? 1 / Math.sqrt(headDim);
  const softcap = d.softcap ?? 0;
  const window = d.window ?? 0;
  const kRows = new CacheRows(kCache, headDim);
  const vRows = new CacheRows(vCache, headDim);
  const k = kRows.values;
  const v = vRows.values;
  const kvDim = nKvHeads * headDim;
  const groupSize = nHeads / nKvHeads;
  const out = new Float32Array(batch.tokenIds.length * nHeads * headDim);
  const numSeqs = batch.seqLens.length;
  const scores = new Float64Array(Math.max(...batch.seqLens, 1));
  for (let s = 0; s < numSeqs; s++) {
    const table = batch.blockTables[group][s];
    for (let t = batch.queryStartLoc[s]; t < batch.queryStartLoc[s + 1]; t++) {
      const ctxLen = batch.positions[t] + 1;
      const first = window > 0 ? Math.max(0, ctxLen - window) : 0;
      for (let h = 0; h < nHeads; h++) {
        const qOff = (t * nHeads + h) * headDim;
        const kvHeadOff = Math.floor(h / groupSize) * headDim;
        let max = -Infinity;
        for (let j = first; j < ctxLen; j++) {
          const kOff = kRows.load(
            (table[Math.floor(j / blockSize)] * blockSize + (j % blockSize)) * kvDim + kvHeadOff,
          );
          let dot = 0;
          for (let i = 0; i < headDim; i++) dot += q[qOff + i] * k[kOff + i];
          scores[j] = softcap > 0 ? softcap * Math.tanh((dot * scale) / softcap) : dot * scale;
          if (scores[j] > max) max = scores[j];
        }
        let sum = 0;
        for (let j = first; j < ctxLen; j++) {
          scores[j] = Math.exp(scores[j] - max);
          sum += scores[j];
        }
        const acc = new Float64Array(headDim);
        for (let j = first; j < ctxLen; j++) {
          const vOff = vRows.load(
            (table[Math.floor(j / blockSize)] * blockSize + (j % blockSize)) * kvDim + kvHeadOff,
          );
          const p = scores[j] / sum;
          for (let i = 0; i < headDim; i++) acc[i] += p * v[vOff + i];
        }
        out.set(acc, qOff);
      }
    }
  }
  return out;
}
