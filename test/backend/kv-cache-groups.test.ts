import { describe, expect, test } from "vitest";
import type { Backend, ForwardBatch, KvCacheLayerGroup } from "../../src/backend/backend.js";
import { loadNativeAddon } from "../../src/backend/native/addon.js";
import { NativeBackend } from "../../src/backend/native/native-backend.js";
import { ReferenceBackend } from "../../src/backend/reference/reference-backend.js";
import { plainConfig } from "../../src/model/config.js";
import { syntheticModelOf } from "../../src/model/synth/synth-model.js";
import { xorshift } from "../helpers.js";

// KV addressing by KV cache group: each layer writes and reads its K/V in its slot layer through its group's
// slot mapping and block tables. Full-attention layers only, so any difference is addressing, not masking.

const model = syntheticModelOf(
  plainConfig({
    dim: 32,
    hiddenDim: 64,
    nLayers: 4,
    nHeads: 2,
    nKvHeads: 1,
    headDim: 16,
    vocabSize: 300,
    maxSeqLen: 128,
    normEps: 1e-6,
    ropeTheta: 10000,
    ropeStyle: "neox",
    tiedEmbeddings: false,
    attentionBias: false,
  }),
  "f32",
  { seed: 3, name: "four-layers" },
);
const backends: [string, () => Promise<Backend>][] = [["reference", async () => new ReferenceBackend(model)]];
if (!(loadNativeAddon() instanceof Error))
  backends.push(["native", () => NativeBackend.load(model, { threads: 1 })]);

const blockSize = 4;
const numBlocks = 40;

/**
 * Two sequences (a 13-token prompt and a 9-token one) prefilled, then one decode step each, with each group's
 * blocks scattered over the pool, disjoint from the other groups'; the logits of every step.
 */
async function run(backend: Backend, groups: KvCacheLayerGroup[] | undefined): Promise<Float32Array[]> {
  backend.initKvCache({ numBlocks, blockSize, dtype: "f32", groups });
  const rand = xorshift(groups?.length ?? 1);
  const free = Array.from({ length: numBlocks }, (_, i) => i).sort(() => rand() - 0.5);
  const lengths = [14, 10];
  const tables = (groups ?? [undefined]).map(() =>
    lengths.map((n) => Int32Array.from(free.splice(0, Math.ceil(n / blockSize)))),
  );
  const step = (starts: number[], counts: number[]): ForwardBatch => {
    const positions = starts.flatMap((s, i) => Array.from({ length: counts[i] }, (_, j) => s + j));
    const seqOf = starts.flatMap((_, i) => new Array<number>(counts[i]).fill(i));
    const slot = (g: number, t: number) =>
      tables[g][seqOf[t]][Math.floor(positions[t] / blockSize)] * blockSize + (positions[t] % blockSize);
    return {
      tokenIds: Int32Array.from(positions, (p, t) => 259 + ((p * 7 + seqOf[t] * 13) % 41)),
      positions: Int32Array.from(positions),
      slotMappings: tables.map((_, g) => Int32Array.from(positions, (_, t) => slot(g, t))),
      queryStartLoc: Int32Array.from([0, counts[0], counts[0] + counts[1]]),
      seqLens: Int32Array.from(starts, (s, i) => s + counts[i]),
      blockTables: tables,
      logitsIndices: Int32Array.from(positions.keys()),
    };
  };
  return [await backend.forward(step([0, 0], [13, 9])), await backend.forward(step([13, 9], [1, 1]))];
}

describe.each(backends)("KV cache groups in the %s backend", (_, create) => {
  test("layers split over groups and slot layers compute what one group of every layer computes", async () => {
    const oneGroup = await run(await create(), undefined);
    const interleaved = await run(await create(), [{ layers: [0, 2] }, { layers: [3, 1] }]);
    const fourGroups = await run(await create(), [
      { layers: [1] },
      { layers: [0] },
      { layers: [3] },
      { layers: [2] },
    ]);
    expect(interleaved).toEqual(oneGroup);
    expect(fourGroups).toEqual(oneGroup);
  });

  test("groups that miss a layer, repeat one or differ in size are refused", async () => {
    const backend = await create();
    const init = (groups: KvCacheLayerGroup[]) => () =>
      backend.initKvCache({ numBlocks, blockSize, dtype: "f32", groups });
    expect(init([{ layers: [0, 1] }, { layers: [2, 2] }])).toThrow(/layer 2 .*two groups/);
    expect(init([{ layers: [0, 1] }, { layers: [2] }])).toThrow(/equal layer counts/);
    expect(init([{ layers: [0, 1] }, { layers: [2, 4] }])).toThrow(/layer 4 is not/);
    expect(init([{ layers: [0] }, { layers: [1] }, { layers: [2] }])).toThrow(/layer 3 is in no group/);
  });
});
