import type { ForwardBatch } from "../backend.js";

export interface AttentionDims {
  nHeads: number;
  nKvHeads: number;
  headDim: number;
  blockSize: number;
}

/**
 * Stores this step's K and V rows in one layer's paged cache.
 * k, v: [numTokens, kvDim]; caches: [numBlocks, blockSize, nKvHeads, headDim], so slot s starts at s · kvDim.
 */
export function writeKv(
  kCache: Float32Array,
  vCache: Float32Array,
  k: Float32Array,
  v: Float32Array,
  slotMapping: Int32Array,
  kvDim: number,
) {
  for (let t = 0; t < slotMapping.length; t++) {
    const dst = slotMapping[t] * kvDim;
    kCache.set(k.subarray(t * kvDim, (t + 1) * kvDim), dst);
    vCache.set(v.subarray(t * kvDim, (t + 1) * kvDim), dst);
  }
}

/**
 * Causal attention for a flat varlen batch, reading K/V through each sequence's block table.
 * q: [numTokens, nHeads, headDim] → out: [numTokens, nHeads · headDim].
 * Token t of sequence s at position p attends to positions 0..p of s (its cached prefix and, causally, the
 * chunk itself: this step's K/V are already written). Position j lives in slot
 * blockTables[s][⌊j / blockSize⌋] · blockSize + j mod blockSize. GQA: query head h reads kv head ⌊h / (nHeads / nKvHeads)⌋.
 */
export function pagedAttention(
  q: Float32Array,
  kCache: Float32Array,
  vCache: Float32Array,
  batch: ForwardBatch,
  d: AttentionDims,
): Float32Array {
  const { nHeads, nKvHeads, headDim, blockSize } = d;
  const kvDim = nKvHeads * headDim;
  const groupSize = nHeads / nKvHeads;
  const scale = 1 / Math.sqrt(headDim);
  const out = new Float32Array(batch.tokenIds.length * nHeads * headDim);
  const numSeqs = batch.seqLens.length;
  const scores = new Float64Array(Math.max(...batch.seqLens, 1));
  for (let s = 0; s < numSeqs; s++) {
    const table = batch.blockTables[s];
    for (let t = batch.queryStartLoc[s]; t < batch.queryStartLoc[s + 1]; t++) {
      const ctxLen = batch.positions[t] + 1;
      for (let h = 0; h < nHeads; h++) {
        const qOff = (t * nHeads + h) * headDim;
        const kvHeadOff = Math.floor(h / groupSize) * headDim;
        let max = -Infinity;
        for (let j = 0; j < ctxLen; j++) {
          const kOff = (table[Math.floor(j / blockSize)] * blockSize + (j % blockSize)) * kvDim + kvHeadOff;
          let dot = 0;
          for (let i = 0; i < headDim; i++) dot += q[qOff + i] * kCache[kOff + i];
          scores[j] = dot * scale;
          if (scores[j] > max) max = scores[j];
        }
        let sum = 0;
        for (let j = 0; j < ctxLen; j++) {
          scores[j] = Math.exp(scores[j] - max);
          sum += scores[j];
        }
        const acc = new Float64Array(headDim);
        for (let j = 0; j < ctxLen; j++) {
          const vOff = (table[Math.floor(j / blockSize)] * blockSize + (j % blockSize)) * kvDim + kvHeadOff;
          const p = scores[j] / sum;
          for (let i = 0; i < headDim; i++) acc[i] += p * vCache[vOff + i];
        }
        out.set(acc, qOff);
      }
    }
  }
  return out;
}
