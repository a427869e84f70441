import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { loadNativeAddon } from "../../src/backend/native/addon.js";
import { NativeBackend } from "../../src/backend/native/native-backend.js";
import { nativeModelConfig, specFromTensors } from "../../src/backend/native/native-spec.js";
import { ReferenceBackend } from "../../src/backend/reference/reference-backend.js";
import { bundledModelPath } from "../../src/cli/default-model.js";
import { LLM } from "../../src/engine/llm.js";
import { writeGgufModel } from "../../src/model/formats/gguf-model.js";
import { loadModel } from "../../src/model/load.js";
import type { LoadedModel } from "../../src/model/model.js";
import { syntheticModel } from "../../src/model/synth/synth-model.js";
import { greedyIds, logitsAt, maxDiff } from "../helpers.js";
import { versePrompts } from "../kjv-prompts.js";
import { describeShared, needs, stories260K } from "../shared-models.js";

const addon = loadNativeAddon();
const inCi = !!process.env.CI && process.env.CI !== "false";
if (addon instanceof Error && !inCi) console.warn(`[skip] native backend: ${addon.message}`);
const built = !(addon instanceof Error);

test.runIf(inCi)("CI: the native addon is built and loads", () => {
  expect(addon instanceof Error ? addon.message : "loaded").toBe("loaded");
});

interface GoldenCase {
  name: string;
  prompt_tokens: number[];
  steps: number;
  generated_tokens?: number[];
  generated_tokens_after_prompt?: number[];
  first_positions_logits?: { pos: number; top10: [number, number][] }[];
  prompt_positions_logits?: { pos: number; top10: [number, number][] }[];
}

describe.skipIf(!built)("native backend", () => {
  describeShared("stories260K (f32) against golden outputs", needs.golden, () => {
    let model: LoadedModel;
    let cases: GoldenCase[];
    beforeAll(() => {
      model = loadModel(stories260K.model, { tokenizer: stories260K.tokenizer });
      cases = JSON.parse(readFileSync(stories260K.golden, "utf8")).cases;
    });

    for (const [kernels, threads] of [
      ["auto", 2],
      ["scalar", 1],
    ] as const) {
      test(`${kernels} kernels, ${threads} threads: golden greedy ids and top-10 logits within 1e-4`, async () => {
        for (const c of cases) {
          const backend = await NativeBackend.load(model, { kernels, threads });
          const expected = c.generated_tokens ?? c.generated_tokens_after_prompt ?? [];
          const maxTokens = c.steps - c.prompt_tokens.length + 1;
          const ids = await greedyIds(backend, c.prompt_tokens, maxTokens, model.tokenizer.stopIds, 512);
          expect(ids, c.name).toEqual(expected);
          const recorded = c.first_positions_logits ?? c.prompt_positions_logits ?? [];
          const sequence = [...c.prompt_tokens, ...ids];
          const logits = await logitsAt(backend, sequence.slice(0, recorded.length), model.config.vocabSize);
          for (const r of recorded)
            for (const [id, value] of r.top10) expect(Math.abs(logits[r.pos][id] - value)).toBeLessThan(1e-4);
        }
      });
    }
  });

  describe("the bundled demo model", () => {
    const model = loadModel(bundledModelPath);

    test("the engine's batched, paged, chunked execution equals one sequence at a time", async () => {
      const prompts = versePrompts(model.tokenizer);
      // A small token budget splits prompts into chunks that share steps with other sequences' decodes.
      const llm = await LLM.fromModel(model, {
        backend: await NativeBackend.load(model, { threads: 2 }),
        maxNumBatchedTokens: 20,
        numBlocks: 64,
      });
      const outs = await llm.generate(prompts, { temperature: 0, maxTokens: 40 });
      for (const [i, prompt] of prompts.entries()) {
        const alone = await greedyIds(
          await NativeBackend.load(model, { threads: 1 }),
          prompt,
          40,
          model.tokenizer.stopIds,
          model.config.maxSeqLen,
        );
        const got = outs[i].outputs[0].tokenIds;
        const ended = got.length > 0 && model.tokenizer.stopIds.includes(got[got.length - 1]);
        expect(ended ? got.slice(0, -1) : got, `prompt ${i}`).toEqual(alone);
      }
    });
  });

  describe("synthetic tiny-test model (GQA) over a 64-token sequence against the reference backend", () => {
    const sequence = Array.from({ length: 64 }, (_, i) => (i * 37 + 11) % 512);
    // Float weights: only f32 summation order differs. Quantized weights: activations are also rounded to
    // int8 per 32-block (≈0.4% per value), which moves logits by well under 2.5% of their largest magnitude.
    const tolerance = {
      f32: () => 1e-5,
      f16: () => 1e-5,
      q8_0: (scale: number) => 0.025 * scale,
      q4_0: (scale: number) => 0.025 * scale,
    };
    for (const dtype of ["f32", "f16", "q8_0", "q4_0"] as const) {
      test(`${dtype}`, async () => {
        const model = syntheticModel("tiny-test", dtype, 3);
        const want = await logitsAt(new ReferenceBackend(model), sequence, model.config.vocabSize);
        const native = await NativeBackend.load(model, { threads: 2 });
        expect(native.weightSource).toBe("buffers");
        const { diff, scale } = maxDiff(await logitsAt(native, sequence, model.config.vocabSize), want);
        expect(diff).toBeLessThanOrEqual(tolerance[dtype](scale));
      });
    }

    describe("from a GGUF file, memory-mapped", () => {
      let dir: string;
      beforeAll(() => {
        dir = mkdtempSync(join(tmpdir(), "vellum-native-"));
      });
      afterAll(() => rmSync(dir, { recursive: true, force: true }));

      test("q8_0 weights are read in place from the file and give the reference's logits", async () => {
        const path = join(dir, "tiny-q8_0.gguf");
        writeGgufModel(syntheticModel("tiny-test", "q8_0", 4), path, { dtype: "q8_0" });
        const model = loadModel(path);
        const native = await NativeBackend.load(model, { threads: 2 });
        expect(native.weightSource).toBe("mapped");
        const want = await logitsAt(new ReferenceBackend(model), sequence, model.config.vocabSize);
        const { diff, scale } = maxDiff(await logitsAt(native, sequence, model.config.vocabSize), want);
        expect(diff).toBeLessThanOrEqual(0.025 * scale);
      });
    });
  });

  describe("input checks", () => {
    const model = syntheticModel("tiny-test", "q4_0", 1);
    const batch = (over: Partial<Record<string, unknown>> = {}) => ({
      tokenIds: Int32Array.of(1, 2),
      positions: Int32Array.of(0, 1),
      slotMappings: [Int32Array.of(0, 1)],
      queryStartLoc: Int32Array.of(0, 2),
      seqLens: Int32Array.of(2),
      blockTables: [[Int32Array.of(0)]],
      logitsIndices: Int32Array.of(1),
      ...over,
    });

    test("forward before initKvCache, and batches that point outside the cache or vocabulary, reject", async () => {
      const native = await NativeBackend.load(model, { threads: 1 });
      await expect(native.forward(batch())).rejects.toThrow(/initKvCache/);
      native.initKvCache({ numBlocks: 2, blockSize: 4, dtype: "f32" });
      await expect(native.forward(batch({ tokenIds: Int32Array.of(1, 512) }))).rejects.toThrow(/vocabulary/);
      await expect(native.forward(batch({ slotMappings: [Int32Array.of(0, 8)] }))).rejects.toThrow(/slot 8/);
      await expect(native.forward(batch({ blockTables: [[Int32Array.of(2)]] }))).rejects.toThrow(
        /block id 2/,
      );
      await expect(native.forward(batch({ slotMappings: [] }))).rejects.toThrow(
        /one slot mapping per KV cache group/,
      );
      await expect(native.forward(batch({ blockTables: [[], []] }))).rejects.toThrow(
        /one block table per sequence/,
      );
      await expect(native.forward(batch({ positions: Int32Array.of(0, 4) }))).rejects.toThrow(/position 4/);
      await expect(native.forward(batch({ logitsIndices: Int32Array.of(2) }))).rejects.toThrow(
        /logits index/,
      );
      expect((await native.forward(batch())).length).toBe(512);
    });

    test("forward into a given buffer: the same logits as a fresh array, in its start; a short buffer rejects", async () => {
      const native = await NativeBackend.load(model, { threads: 2 });
      native.initKvCache({ numBlocks: 2, blockSize: 4, dtype: "f32" });
      const two = batch({ logitsIndices: Int32Array.of(0, 1) });
      const fresh = await native.forward(two);
      const out = new Float32Array(3 * 512).fill(7);
      const into = await native.forward(two, out);
      expect(into.buffer).toBe(out.buffer);
      expect(into.byteOffset).toBe(0);
      expect(into).toEqual(fresh);
      expect(out.subarray(2 * 512).every((x) => x === 7)).toBe(true);
      const view = out.subarray(512);
      expect(await native.forward(batch(), view)).toEqual(fresh.subarray(512));
      expect(out.subarray(0, 512)).toEqual(fresh.subarray(0, 512));
      await expect(native.forward(two, new Float32Array(1023))).rejects.toThrow(
        /out holds 1023 floats, the logits need 1024/,
      );
    });

    test("NativeModel reads exactly the config fields the TypeScript side sends", () => {
      if (addon instanceof Error) throw addon;
      const sent = Object.keys(nativeModelConfig(model.config)).sort();
      expect([...addon.NativeModel.configFields].sort()).toEqual(sent);
    });

    test("a config field out of range is named", () => {
      if (addon instanceof Error) throw addon;
      const spec = specFromTensors(model.config, model.tensors, "tiny-test", 1, "auto", 512);
      expect(() => new addon.NativeModel({ ...spec, config: { ...spec.config, headDim: 1 } })).toThrow(
        "config.headDim must be an integer ≥ 2",
      );
      expect(() => new addon.NativeModel({ ...spec, config: { ...spec.config, nKvHeads: 3 } })).toThrow(
        "config.nHeads must be a multiple of nKvHeads",
      );
    });

    test("a weight buffer shorter than its shape is an InputError naming the model", async () => {
      const broken = syntheticModel("tiny-test", "q8_0", 1);
      const wq = broken.tensors.get("blk.1.attn_q.weight");
      if (!wq) throw new Error("synthetic model without blk.1.attn_q.weight");
      broken.tensors.set("blk.1.attn_q.weight", { ...wq, data: wq.data.subarray(0, 100) });
      await expect(NativeBackend.load(broken, { threads: 1 })).rejects.toThrow(
        /synthetic:tiny-test: native backend: weights.layers\[1\].wq.data holds 100 bytes/,
      );
    });
  });

  test("forward runs off the event loop: timers fire while a long batch computes", async () => {
    const model = syntheticModel("tiny-test", "f32", 2);
    const native = await NativeBackend.load(model, { threads: 1 });
    native.initKvCache({ numBlocks: 2048 / 16, blockSize: 16, dtype: "f32" });
    const T = 2048;
    const positions = Int32Array.from({ length: T }, (_, i) => i);
    let ticks = 0;
    const timer = setInterval(() => ticks++, 1);
    const started = performance.now();
    await native.forward({
      tokenIds: positions.map((p) => p % 512),
      positions,
      slotMappings: [positions],
      queryStartLoc: Int32Array.of(0, T),
      seqLens: Int32Array.of(T),
      blockTables: [[Int32Array.from({ length: T / 16 }, (_, i) => i)]],
      logitsIndices: Int32Array.of(T - 1),
    });
    const elapsed = performance.now() - started;
    clearInterval(timer);
    // A synchronous forward would block the timer for the whole pass.
    expect(elapsed).toBeGreaterThan(20);
    expect(ticks).toBeGreaterThan(3);
  });

  test("times its forward pass: attention and the classifier within the whole, attention growing with the context", async () => {
    const model = syntheticModel("tiny-test", "f32", 2);
    const native = await NativeBackend.load(model, { threads: 1 });
    expect(native.lastForwardTimes).toEqual({ seconds: 0, attentionSeconds: 0, classifierSeconds: 0 });
    native.initKvCache({ numBlocks: 2048 / 16, blockSize: 16, dtype: "f32" });
    // One decode at `position`: attention reads position + 1 keys.
    const decodeAt = async (position: number) => {
      await native.forward({
        tokenIds: Int32Array.of(5),
        positions: Int32Array.of(position),
        slotMappings: [Int32Array.of(position)],
        queryStartLoc: Int32Array.of(0, 1),
        seqLens: Int32Array.of(position + 1),
        blockTables: [[Int32Array.from({ length: 2048 / 16 }, (_, i) => i)]],
        logitsIndices: Int32Array.of(0),
      });
      return { ...native.lastForwardTimes };
    };
    const median = async (position: number) => {
      const runs = [];
      for (let i = 0; i < 7; i++) runs.push(await decodeAt(position));
      return runs.sort((a, b) => a.attentionSeconds - b.attentionSeconds)[3];
    };
    const short = await median(0);
    const long = await median(2047);
    for (const t of [short, long]) {
      expect(t.seconds).toBeGreaterThan(0);
      expect(t.attentionSeconds).toBeGreaterThan(0);
      expect(t.classifierSeconds).toBeGreaterThan(0);
      expect(t.attentionSeconds + t.classifierSeconds).toBeLessThan(t.seconds);
    }
    // 2048 keys against 1: the attention of the long context dominates its pass
    expect(long.attentionSeconds).toBeGreaterThan(4 * short.attentionSeconds);
  });
});
