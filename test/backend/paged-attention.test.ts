import fc from "fast-check";
import { expect, test } from "vitest";
import type { ForwardBatch, KvCacheDtype } from "../../src/backend/backend.js";
import { allocateKvCache, pagedAttention, writeKv } from "../../src/backend/reference/paged-attention.js";
import { f16ToF32, f32ToF16 } from "../../src/model/dtype.js";
import { scatteredBlockTables, signedRandom } from "../helpers.js";

/** Textbook causal attention over contiguous per-sequence K/V ([len, nKvHeads, headDim]), in float64. */
function contiguousAttention(
  q: Float64Array[], // per token of the sequence: [nHeads * headDim]
  k: Float64Array[],
  v: Float64Array[],
  nHeads: number,
  nKvHeads: number,
  headDim: number,
  firstQueryPos: number,
): Float64Array[] {
  return q.map((qt, i) => {
    const pos = firstQueryPos + i;
    const out = new Float64Array(nHeads * headDim);
    for (let h = 0; h < nHeads; h++) {
      const kvh = Math.floor(h / (nHeads / nKvHeads));
      const scores = [];
      for (let j = 0; j <= pos; j++) {
        let dot = 0;
        for (let d = 0; d < headDim; d++) dot += qt[h * headDim + d] * k[j][kvh * headDim + d];
        scores.push(dot / Math.sqrt(headDim));
      }
      const max = Math.max(...scores);
      const e = scores.map((s) => Math.exp(s - max));
      const sum = e.reduce((a, b) => a + b, 0);
      for (let j = 0; j <= pos; j++)
        for (let d = 0; d < headDim; d++) out[h * headDim + d] += (e[j] / sum) * v[j][kvh * headDim + d];
    }
    return out;
  });
}

/** What a cache of `dtype` gives back for x: f16 rounds to nearest-even. */
const stored = (dtype: KvCacheDtype) => (x: number) => (dtype === "f16" ? f16ToF32(f32ToF16(x)) : x);

test.each(["f32", "f16"] as const)(
  "%s: paged attention over scattered blocks equals contiguous attention on the stored K/V (mixed prefill chunks and decodes)",
  (dtype) => {
    fc.assert(
      fc.property(
        fc.record({
          seed: fc.integer(),
          blockSize: fc.constantFrom(1, 2, 4, 16),
          groups: fc.constantFrom(1, 2, 4),
          nKvHeads: fc.constantFrom(1, 2),
          headDim: fc.constantFrom(2, 4, 8),
          // per sequence: tokens already cached, tokens computed this step (1 = a decode)
          seqs: fc.array(
            fc.record({ cached: fc.integer({ min: 0, max: 40 }), fresh: fc.integer({ min: 1, max: 12 }) }),
            {
              minLength: 1,
              maxLength: 4,
            },
          ),
        }),
        ({ seed, blockSize, groups, nKvHeads, headDim, seqs }) => {
          const rand = signedRandom(seed);
          const nHeads = nKvHeads * groups;
          const kvDim = nKvHeads * headDim;
          const { numBlocks, blockTables: tables } = scatteredBlockTables(
            seqs.map((s) => s.cached + s.fresh),
            blockSize,
            rand,
          );

          const kCache = allocateKvCache(dtype, numBlocks * blockSize * kvDim);
          const vCache = allocateKvCache(dtype, numBlocks * blockSize * kvDim);
          const seqK: Float64Array[][] = [];
          const seqV: Float64Array[][] = [];
          const slot = (s: number, j: number) =>
            tables[s][Math.floor(j / blockSize)] * blockSize + (j % blockSize);
          const rows = (n: number, width: number) =>
            Array.from({ length: n }, () => Float64Array.from({ length: width }, () => Math.fround(rand())));
          seqs.forEach((s, i) => {
            seqK.push(rows(s.cached + s.fresh, kvDim));
            seqV.push(rows(s.cached + s.fresh, kvDim));
            // Earlier steps' K/V, written as those steps did.
            const cachedSlots = Int32Array.from({ length: s.cached }, (_, j) => slot(i, j));
            const flat = (r: Float64Array[]) =>
              Float32Array.from(r.slice(0, s.cached).flatMap((x) => [...x]));
            writeKv(kCache, vCache, flat(seqK[i]), flat(seqV[i]), cachedSlots, kvDim);
          });

          // This step's tokens: each sequence's fresh tokens, flattened.
          const queries = seqs.map((s) => rows(s.fresh, nHeads * headDim));
          const tokenIds: number[] = [];
          const positions: number[] = [];
          const slots: number[] = [];
          const starts = [0];
          const newK: number[] = [];
          const newV: number[] = [];
          const q: number[] = [];
          seqs.forEach((s, i) => {
            for (let t = 0; t < s.fresh; t++) {
              const pos = s.cached + t;
              tokenIds.push(0);
              positions.push(pos);
              slots.push(slot(i, pos));
              newK.push(...seqK[i][pos]);
              newV.push(...seqV[i][pos]);
              q.push(...queries[i][t]);
            }
            starts.push(tokenIds.length);
          });
          const batch: ForwardBatch = {
            tokenIds: Int32Array.from(tokenIds),
            positions: Int32Array.from(positions),
            slotMappings: [Int32Array.from(slots)],
            queryStartLoc: Int32Array.from(starts),
            seqLens: Int32Array.from(seqs.map((s) => s.cached + s.fresh)),
            blockTables: [tables],
            logitsIndices: new Int32Array(0),
          };
          const slotMapping = batch.slotMappings[0];
          writeKv(kCache, vCache, Float32Array.from(newK), Float32Array.from(newV), slotMapping, kvDim);
          const out = pagedAttention(Float32Array.from(q), kCache, vCache, batch, 0, {
            nHeads,
            nKvHeads,
            headDim,
            blockSize,
          });

          seqs.forEach((s, i) => {
            const expected = contiguousAttention(
              queries[i],
              seqK[i].map((r) => r.map(stored(dtype))),
              seqV[i].map((r) => r.map(stored(dtype))),
              nHeads,
              nKvHeads,
              headDim,
              s.cached,
            );
            expected.forEach((row, t) => {
              const offset = (starts[i] + t) * nHeads * headDim;
              row.forEach((x, d) => {
                expect(Math.abs(out[offset + d] - x)).toBeLessThan(1e-6);
              });
            });
          });
        },
      ),
      { numRuns: 200 },
    );
  },
);

test("an f16 cache holds K/V as binary16 bits (half the bytes), rounded to nearest-even", () => {
  const kvDim = 4;
  const k = Float32Array.of(1, 1 + 2 ** -11, 65520, 2 ** -25 * 3, 0.1, -0, Number.NaN, 1e-8);
  const v = k.map((x) => -x);
  const kCache = allocateKvCache("f16", 3 * kvDim);
  const vCache = allocateKvCache("f16", 3 * kvDim);
  expect(kCache).toBeInstanceOf(Uint16Array);
  expect(kCache.byteLength).toBe(allocateKvCache("f32", 3 * kvDim).byteLength / 2);
  writeKv(kCache, vCache, k, v, Int32Array.of(2, 0), kvDim);
  expect([...kCache.subarray(8, 12), ...kCache.subarray(0, 4)]).toEqual(Array.from(k, f32ToF16));
  expect([...vCache.subarray(8, 12), ...vCache.subarray(0, 4)]).toEqual(Array.from(v, f32ToF16));
  // 1 + 2^-11 is a tie between 1 and the next f16: it goes to the even one, 1 (0x3c00); 65520 overflows to inf.
  expect(kCache[9]).toBe(0x3c00);
  expect(kCache[10]).toBe(0x7c00);
});
