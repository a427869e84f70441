import fc from "fast-check";
import { expect, test } from "vitest";
import type { ForwardBatch, KvCacheDtype } from "../../src/backend/backend.js";
import { allocateKvCache, pagedAttention, writeKv } from "../../src/backend/reference/paged-attention.js";
import { f16ToF32, f32ToF16 } from "../../src/model/float-formats.js";
import { scatteredBlockTables, signedRandom } from "../helpers.js";

interface ScoreShape {
  scale: number;
  softcap: number;
  window: number;
}

/**
 * Textbook causal attention over contiguous per-sequence K/V ([len, nKvHeads, headDim]), in float64: a masked
 * softmax over every key, the masked ones (after p, or before p − window + 1) weighing exactly 0.
 */
function contiguousAttention(
  q: Float64Array[], // per token of the sequence: [nHeads * headDim]
  k: Float64Array[],
  v: Float64Array[],
  nHeads: number,
  nKvHeads: number,
  headDim: number,
  firstQueryPos: number,
  shape: ScoreShape,
): Float64Array[] {
  return q.map((qt, i) => {
    const pos = firstQueryPos + i;
    const visible = (j: number) => j <= pos && (shape.window === 0 || pos - j < shape.window);
    const out = new Float64Array(nHeads * headDim);
    for (let h = 0; h < nHeads; h++) {
      const kvh = Math.floor(h / (nHeads / nKvHeads));
      const scores = k.map((kj) => {
        let dot = 0;
        for (let d = 0; d < headDim; d++) dot += qt[h * headDim + d] * kj[kvh * headDim + d];
        const s = dot * shape.scale;
        return shape.softcap > 0 ? shape.softcap * Math.tanh(s / shape.softcap) : s;
      });
      const max = Math.max(...scores.filter((_, j) => visible(j)));
      const e = scores.map((s, j) => (visible(j) ? Math.exp(s - max) : 0));
      const sum = e.reduce((a, b) => a + b, 0);
      e.forEach((ej, j) => {
        for (let d = 0; d < headDim; d++) out[h * headDim + d] += (ej / sum) * v[j][kvh * headDim + d];
      });
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
          scale: fc.constantFrom(undefined, 0.3),
          softcap: fc.constantFrom(0, 0, 1.5),
          window: fc.constantFrom(0, 0, 1, 3, 10),
        }),
        ({ seed, blockSize, groups, nKvHeads, headDim, seqs, scale, softcap, window }) => {
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
            scale,
            softcap,
            window,
          });
          const shape = { scale: scale ?? 1 / Math.sqrt(headDim), softcap, window };

          seqs.forEach((s, i) => {
            const expected = contiguousAttention(
              queries[i],
              seqK[i].map((r) => r.map(stored(dtype))),
              seqV[i].map((r) => r.map(stored(dtype))),
              nHeads,
              nKvHeads,
              headDim,
              s.cached,
              shape,
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

test("a sliding window never reads keys before p − window + 1: their blocks may be freed and point anywhere", () => {
  const rand = signedRandom(7);
  const [nHeads, nKvHeads, headDim, blockSize, window] = [2, 1, 4, 4, 6];
  const len = 23;
  const kvDim = nKvHeads * headDim;
  // Block 0 stands for a freed block: NaN everywhere, so reading any of it would poison the output.
  const numBlocks = 1 + Math.ceil(len / blockSize);
  const kCache = allocateKvCache("f32", numBlocks * blockSize * kvDim);
  const vCache = allocateKvCache("f32", numBlocks * blockSize * kvDim);
  const table = Int32Array.from({ length: numBlocks - 1 }, (_, b) => b + 1);
  const positions = Int32Array.from({ length: len }, (_, j) => j);
  const slots = positions.map((j) => table[Math.floor(j / blockSize)] * blockSize + (j % blockSize));
  writeKv(
    kCache,
    vCache,
    Float32Array.from({ length: len * kvDim }, rand),
    Float32Array.from({ length: len * kvDim }, rand),
    slots,
    kvDim,
  );
  kCache.fill(Number.NaN, 0, blockSize * kvDim);
  vCache.fill(Number.NaN, 0, blockSize * kvDim);
  const q = Float32Array.from({ length: nHeads * headDim }, rand);
  const attend = (blockTable: Int32Array) =>
    pagedAttention(
      q,
      kCache,
      vCache,
      {
        tokenIds: Int32Array.of(0),
        positions: Int32Array.of(len - 1),
        slotMappings: [slots.subarray(len - 1)],
        queryStartLoc: Int32Array.of(0, 1),
        seqLens: Int32Array.of(len),
        blockTables: [[blockTable]],
        logitsIndices: new Int32Array(0),
      },
      0,
      { nHeads, nKvHeads, headDim, blockSize, window },
    );
  const want = attend(table);
  // Position 22 sees 17…22: blocks 0–3 (positions 0–15) lie wholly before its window.
  const freed = Int32Array.from(table, (block, b) => ((b + 1) * blockSize <= len - window ? 0 : block));
  expect(freed.slice(0, 4)).toEqual(Int32Array.of(0, 0, 0, 0));
  const got = attend(freed);
  expect(got.every(Number.isFinite)).toBe(true);
  expect(got).toEqual(want);
});

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
