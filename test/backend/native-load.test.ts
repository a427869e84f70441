import { describe, expect, test } from "vitest";
import { type ForwardBatch, untilKvCacheResident } from "../../src/backend/backend.js";
import { loadNativeAddon } from "../../src/backend/native/addon.js";
import { NativeBackend } from "../../src/backend/native/native-backend.js";
import { specFromTensors } from "../../src/backend/native/native-spec.js";
import { tensorBytes } from "../../src/model/dtype.js";
import { syntheticModel } from "../../src/model/synth/synth-model.js";
import { watchEventLoop } from "../helpers.js";
import { zeroWeightsModel } from "../zero-weights-model.js";

const addon = loadNativeAddon();

/** Bytes of the matrices the SIMD paths copy interleaved: every q8_0 matrix (all have rows in groups of 8). */
function matrixBytes(model: ReturnType<typeof zeroWeightsModel>): number {
  let bytes = 0;
  for (const [name, t] of model.tensors)
    if (t.dtype === "q8_0" && name !== "token_embd.weight") bytes += tensorBytes(t.dtype, t.shape);
  return bytes;
}

describe.skipIf(addon instanceof Error)("building the native backend off the event loop", () => {
  // TinyLlama's shapes, 6 of its 22 layers: 350 MB of q8_0 matrices to interleave.
  const model = zeroWeightsModel(6);

  test("the event loop turns while the weights are interleaved; a 1 GiB KV cache returns at once and fills in the background", async () => {
    const loop = watchEventLoop(1);
    const started = performance.now();
    const backend = await NativeBackend.load(model, { threads: 2 });
    const ms = performance.now() - started;
    const maxGapMs = await loop.stop();
    expect(backend.kernelPath).not.toBe("scalar");
    // Building it on the JS thread (as the addon did) stalls the loop for the whole load.
    console.log(`load ${ms.toFixed(0)} ms, the event loop's longest gap ${maxGapMs.toFixed(1)} ms`);
    expect(maxGapMs).toBeLessThan(ms / 4);

    const c = model.config;
    const blockBytes = 16 * c.nKvHeads * c.headDim * 4 * 2 * c.nLayers;
    const numBlocks = Math.floor(2 ** 30 / blockBytes);
    const rss = process.memoryUsage().rss;
    const allocating = performance.now();
    backend.initKvCache({ numBlocks, blockSize: 16, dtype: "f32" });
    // A zero-filling pass on the JS thread took seconds a GiB here; the pages are mapped, not written.
    expect(performance.now() - allocating).toBeLessThan(250);
    // A thread of the cache's own makes every page resident, so that no forward pass pays a page fault for them.
    // It says when it has finished, and the process's resident memory then holds the whole cache.
    expect(backend.kvCacheResident).toBe(false);
    await untilKvCacheResident(backend);
    expect(process.memoryUsage().rss - rss).toBeGreaterThan(0.9 * numBlocks * blockBytes);
  });

  test("making the cache resident never changes what a forward pass wrote: K/V written before the fill thread reached their pages read back as K/V written after", async () => {
    const small = syntheticModel("tiny-test", "q8_0", 1);
    const backend = await NativeBackend.load(small, { threads: 2 });
    const c = small.config;
    const blockSize = 16;
    const numBlocks = Math.floor(2 ** 28 / (blockSize * c.nKvHeads * c.headDim * 4 * 2 * c.nLayers));
    // One sequence: `prompt` tokens, then a decode step reading them back; blocks near the end of the cache, which
    // the fill thread (running from the start) reaches last.
    const prompt = 40;
    const step = (firstBlock: number, start: number, count: number): ForwardBatch => {
      const table = Int32Array.from({ length: 4 }, (_, i) => firstBlock + i);
      const positions = Int32Array.from({ length: count }, (_, i) => start + i);
      return {
        tokenIds: positions.map((p) => (p * 7919 + 3) % c.vocabSize),
        positions,
        slotMappings: [positions.map((p) => table[Math.floor(p / blockSize)] * blockSize + (p % blockSize))],
        queryStartLoc: Int32Array.of(0, count),
        seqLens: Int32Array.of(start + count),
        blockTables: [[table]],
        logitsIndices: Int32Array.of(count - 1),
      };
    };
    backend.initKvCache({ numBlocks, blockSize, dtype: "f32" });
    const early = numBlocks - 4;
    await backend.forward(step(early, 0, prompt));
    expect(backend.kvCacheResident).toBe(false);
    await untilKvCacheResident(backend);
    const readBack = Float32Array.from(await backend.forward(step(early, prompt, 1)));
    const late = numBlocks - 8;
    await backend.forward(step(late, 0, prompt));
    expect(Array.from(await backend.forward(step(late, prompt, 1)))).toEqual(Array.from(readBack));
  });

  test("progress: from 0 of the total to the total, never backwards, the total being the interleaved matrices' bytes", async () => {
    const events: [number, number][] = [];
    await NativeBackend.load(model, {
      threads: 2,
      onInterleaveProgress: (done, total) => events.push([done, total]),
    });
    const total = matrixBytes(model);
    expect(events[0]).toEqual([0, total]);
    expect(events.at(-1)).toEqual([total, total]);
    // One event per matrix: the classifier and 7 per layer.
    expect(events.length).toBe(2 + 7 * model.config.nLayers);
    for (const [i, [done, t]] of events.entries()) {
      expect(t).toBe(total);
      if (i > 0) expect(done).toBeGreaterThan(events[i - 1][0]);
    }
  });

  test("scalar kernels interleave nothing: one event, 0 of 0", async () => {
    const events: [number, number][] = [];
    const small = syntheticModel("tiny-test", "q8_0", 1);
    const onInterleaveProgress = (done: number, total: number) => events.push([done, total]);
    await NativeBackend.load(small, { threads: 1, kernels: "scalar", onInterleaveProgress });
    expect(events).toEqual([[0, 0]]);
  });

  test("a progress callback that throws fails the load with its error, once the work is done", async () => {
    const small = syntheticModel("tiny-test", "q8_0", 1);
    const onInterleaveProgress = () => {
      throw new Error("the bar broke");
    };
    await expect(NativeBackend.load(small, { threads: 1, onInterleaveProgress })).rejects.toThrow(
      /synthetic:tiny-test: native backend: the bar broke/,
    );
  });

  test("the addon's model refuses work before prepare() has finished, and a second prepare()", async () => {
    if (addon instanceof Error) throw addon;
    const small = syntheticModel("tiny-test", "q8_0", 1);
    const native = new addon.NativeModel(
      specFromTensors(small.config, small.tensors, small.path, 1, "auto", 64),
    );
    const notPrepared = /the model is not prepared \(await prepare\(\) first\)/;
    expect(() => native.initKvCache(4, 16, "f32", [Int32Array.of(0, 1)])).toThrow(notPrepared);
    expect(() => native.mappedWeightBytes).toThrow(notPrepared);
    const one = Int32Array.of(0);
    expect(() => native.forward(one, one, [one], Int32Array.of(0, 1), Int32Array.of(1), [one], one)).toThrow(
      notPrepared,
    );
    const preparing = native.prepare();
    expect(() => native.prepare()).toThrow(/already prepared or being prepared/);
    expect(() => native.initKvCache(4, 16, "f32", [Int32Array.of(0, 1)])).toThrow(notPrepared);
    await preparing;
    expect(() => native.prepare()).toThrow(/already prepared or being prepared/);
    native.initKvCache(4, 16, "f32", [Int32Array.of(0, 1)]);
  });

  test("prepare(onProgress) takes a function or nothing", () => {
    if (addon instanceof Error) throw addon;
    const small = syntheticModel("tiny-test", "q8_0", 1);
    const native = new addon.NativeModel(
      specFromTensors(small.config, small.tensors, small.path, 1, "auto", 64),
    );
    expect(() => native.prepare(42 as never)).toThrow(/onProgress must be a function/);
  });
});
