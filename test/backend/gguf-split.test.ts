/**
 * A split GGUF (llama.cpp's gguf-split format) written by vellum computes exactly as the unsplit file: on the
 * reference backend (tensors read from their shards) and on the native one (every shard memory-mapped), and
 * llama.cpp (node-llama-cpp) loads the split from its first shard and continues greedily as vellum does.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { getLlama, LlamaLogLevel, type Token } from "node-llama-cpp";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import type { Backend } from "../../src/backend/backend.js";
import { loadNativeAddon } from "../../src/backend/native/addon.js";
import { NativeBackend } from "../../src/backend/native/native-backend.js";
import { ReferenceBackend } from "../../src/backend/reference/reference-backend.js";
import { bundledModelPath } from "../../src/cli/default-model.js";
import { loadGgufModel, writeGgufModel } from "../../src/model/formats/gguf-model.js";
import { loadModel } from "../../src/model/load.js";
import type { LoadedModel } from "../../src/model/model.js";
import type { WeightType } from "../../src/model/quant/mixes.js";
import { greedyIds, logitsAt } from "../helpers.js";
import { versePrompts } from "../kjv-prompts.js";

const built = !(loadNativeAddon() instanceof Error);
const maxTokens = 24;
const maxModelLen = 128;

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "vellum-gguf-split-backend-"));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** The bundled model written as `dtype`, unsplit and split in 3 shards by tensor count, each loaded. */
function unsplitAndSplit(dtype: WeightType): { unsplit: LoadedModel; split: LoadedModel; shards: string[] } {
  const source = loadModel(bundledModelPath);
  const [path] = writeGgufModel(source, join(dir, `${dtype}.gguf`), { dtype });
  const shards = writeGgufModel(source, join(dir, `${dtype}-split.gguf`), {
    dtype,
    split: { maxTensors: 20 },
  });
  expect(shards).toHaveLength(3);
  return { unsplit: loadGgufModel(path), split: loadGgufModel(shards[0]), shards };
}

async function expectSameGeneration(
  make: (model: LoadedModel) => Promise<Backend>,
  unsplit: LoadedModel,
  split: LoadedModel,
) {
  const prompts = versePrompts(unsplit.tokenizer);
  const vocab = unsplit.config.vocabSize;
  const [a, b] = [await make(unsplit), await make(split)];
  expect(await logitsAt(b, prompts[2], vocab)).toEqual(await logitsAt(a, prompts[2], vocab));
  for (const prompt of prompts.slice(0, 4)) {
    const stop = unsplit.tokenizer.stopIds;
    expect(await greedyIds(b, prompt, maxTokens, stop, maxModelLen)).toEqual(
      await greedyIds(a, prompt, maxTokens, stop, maxModelLen),
    );
  }
}

test("reference backend: the split generates the same tokens as the unsplit file, reading each shard", async () => {
  const { unsplit, split } = unsplitAndSplit("q8_0");
  await expectSameGeneration(async (m) => new ReferenceBackend(m), unsplit, split);
});

describe.skipIf(!built)("native backend", () => {
  test("maps every shard (nothing copied) and generates the same tokens as from the unsplit file", async () => {
    const { unsplit, split } = unsplitAndSplit("q8_0");
    const [a, b] = [
      await NativeBackend.load(unsplit, { threads: 1 }),
      await NativeBackend.load(split, { threads: 1 }),
    ];
    expect(b.weightSource).toBe("mapped");
    expect(b.mappedWeightBytes).toBe(a.mappedWeightBytes);
    expect(b.mappedWeightBytes).toBeGreaterThan(0);
    await expectSameGeneration((m) => NativeBackend.load(m, { threads: 1 }), unsplit, split);
  });
});

test("llama.cpp loads vellum's split from its first shard and continues greedily as vellum does", async () => {
  const { split, shards } = unsplitAndSplit("f32");
  const llama = await getLlama({ gpu: false, build: "never", logLevel: LlamaLogLevel.error });
  try {
    const model = await llama.loadModel({ modelPath: shards[0] });
    const context = await model.createContext({ contextSize: maxModelLen, threads: 1 });
    try {
      expect((model.fileInfo.metadata as { split?: { count?: number } }).split?.count).toBe(3);
      const reference = new ReferenceBackend(split);
      for (const prompt of versePrompts(split.tokenizer).slice(1, 4)) {
        const sequence = context.getSequence();
        const theirs: number[] = [];
        for await (const token of sequence.evaluate(prompt as Token[], { temperature: 0 })) {
          theirs.push(token);
          if (theirs.length >= maxTokens || split.tokenizer.stopIds.includes(token)) break;
        }
        sequence.dispose();
        const ours = await greedyIds(reference, prompt, maxTokens, split.tokenizer.stopIds, maxModelLen);
        expect(ours.length).toBeGreaterThan(0);
        expect(theirs).toEqual(ours);
      }
    } finally {
      await context.dispose();
      await model.dispose();
    }
  } finally {
    await llama.dispose();
  }
});
