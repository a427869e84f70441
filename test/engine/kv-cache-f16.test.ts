import { describe, expect, test } from "vitest";
import type { Backend, KvCacheDtype, KvCacheSpec } from "../../src/backend/backend.js";
import { loadNativeAddon } from "../../src/backend/native/addon.js";
import { NativeBackend } from "../../src/backend/native/native-backend.js";
import { ReferenceBackend } from "../../src/backend/reference/reference-backend.js";
import { bundledModelPath } from "../../src/cli/default-model.js";
import { kvBytesPerToken } from "../../src/core/kv-cache-sizing.js";
import { createEngine } from "../../src/engine/create-engine.js";
import { LLM } from "../../src/engine/llm.js";
import { loadModel } from "../../src/model/load.js";
import { syntheticModel } from "../../src/model/synth/synth-model.js";
import { logitsAt } from "../helpers.js";
import { versePrompts } from "../kjv-prompts.js";

const nativeBuilt = !(loadNativeAddon() instanceof Error);

describe("f16 KV cache on the bundled demo model", () => {
  const model = loadModel(bundledModelPath);
  const prompts = versePrompts(model.tokenizer);
  const maxTokens = 120;

  /** Greedy ids of every prompt, batched by the engine over a paged cache of `dtype`. */
  async function greedy(backend: Backend, kvCacheDtype: KvCacheDtype): Promise<number[][]> {
    const llm = await LLM.fromModel(model, { backend, kvCacheDtype, maxModelLen: 256, numBlocks: 128 });
    const outs = await llm.generate(prompts, { temperature: 0, maxTokens });
    return outs.map((o) => o.outputs[0].tokenIds);
  }

  test.skipIf(!nativeBuilt)("native and reference backends give the same ids with an f16 cache", async () => {
    const reference = await greedy(new ReferenceBackend(model), "f16");
    const native = await greedy(await NativeBackend.load(model, { threads: 2 }), "f16");
    expect(native).toEqual(reference);
  });

  test("f16 and f32 caches agree on most tokens, on each backend", async () => {
    const backends: (() => Promise<Backend>)[] = [async () => new ReferenceBackend(model)];
    if (nativeBuilt) backends.push(() => NativeBackend.load(model, { threads: 2 }));
    for (const make of backends) {
      const backend = await make();
      const f32 = await greedy(backend, "f32");
      const f16 = await greedy(await make(), "f16");
      // Tokens before each sequence's first difference: after it the two continue from different texts.
      let agreed = 0;
      let total = 0;
      f32.forEach((ids, i) => {
        const firstDiff = ids.findIndex((id, j) => id !== f16[i][j]);
        agreed += firstDiff === -1 ? ids.length : firstDiff;
        total += ids.length;
      });
      // Measured: 600 of 600 on both backends.
      expect(agreed / total, backend.name).toBeGreaterThanOrEqual(0.95);
    }
  });

  test("an f16 cache moves teacher-forced logits, a little, on each backend (the dtype reaches the cache)", async () => {
    const sequence = Array.from({ length: 64 }, (_, i) => (i * 37 + 11) % model.config.vocabSize);
    const backends: Backend[] = [new ReferenceBackend(model)];
    if (nativeBuilt)
      backends.push(
        await NativeBackend.load(model, { threads: 2 }),
        await NativeBackend.load(model, { kernels: "scalar" }),
      );
    for (const backend of backends) {
      const f32 = await logitsAt(backend, sequence, model.config.vocabSize, "f32");
      const f16 = await logitsAt(backend, sequence, model.config.vocabSize, "f16");
      let diff = 0;
      let scale = 0;
      for (const [i, row] of f32.entries())
        for (const [j, x] of row.entries()) {
          diff = Math.max(diff, Math.abs(x - f16[i][j]));
          scale = Math.max(scale, Math.abs(x));
        }
      // Measured: ≈ 0.0018, where the largest logit is ≈ 13.
      expect(diff, backend.name).toBeGreaterThan(0);
      expect(diff, backend.name).toBeLessThan(0.01 * scale);
    }
  });
});

describe("f16 KV cache sizing", () => {
  const model = syntheticModel("tiny-test", "f32", 1);
  const blockSize = 16;
  const f32BlockBytes = kvBytesPerToken(model.config, "f32") * blockSize;

  test("the same kvCacheMemory buys twice the blocks; the summary names the dtype", async () => {
    const sized = (kvCacheDtype: KvCacheDtype) =>
      createEngine(model, {
        backend: "reference",
        kvCacheDtype,
        blockSize,
        kvCacheMemory: 40 * f32BlockBytes,
      });
    const f32 = await sized("f32");
    const f16 = await sized("f16");
    expect(f32.engine.core.config.numBlocks).toBe(40);
    expect(f16.engine.core.config.numBlocks).toBe(80);
    expect(f16.engine.core.config.kvCacheDtype).toBe("f16");
    expect(f32.summary).toMatch(/^KV cache \(f32\): 40 blocks of 16 tokens × 2 layers = 320.0 KiB;/);
    expect(f16.summary).toMatch(/^KV cache \(f16\): 80 blocks of 16 tokens × 2 layers = 320.0 KiB;/);
  });

  test("the engine hands the dtype to the backend's initKvCache", async () => {
    const reference = new ReferenceBackend(model);
    const specs: KvCacheSpec[] = [];
    const backend: Backend = {
      name: "spy",
      initKvCache: (spec) => {
        specs.push(spec);
        reference.initKvCache(spec);
      },
      forward: (batch) => reference.forward(batch),
    };
    await createEngine(model, { backend, kvCacheDtype: "f16", numBlocks: 4 });
    expect(specs).toEqual([
      { numBlocks: 4, blockSize: 16, dtype: "f16", groups: [{ window: 0, layers: [0, 1] }] },
    ]);
  });

  test("the default stays f32", async () => {
    const { engine } = await createEngine(model, { backend: "reference", numBlocks: 4 });
    expect(engine.core.config.kvCacheDtype).toBe("f32");
  });
});
