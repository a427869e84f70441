import { expect, test } from "vitest";
import { type ModelConfig, plainConfig } from "../../src/model/config.js";
import { float64Compute } from "../../src/train/compute.js";
import { LlamaGraph } from "../../src/train/llama-graph.js";
import { initParams } from "../../src/train/params.js";
import { Rng } from "../../src/util/rng.js";

// A tiny random model in float64 with plain JS matmuls: GQA (4 query heads on 2 kv heads), 2 layers.
const config: ModelConfig = plainConfig({
  dim: 8,
  hiddenDim: 12,
  nLayers: 2,
  nHeads: 4,
  nKvHeads: 2,
  headDim: 2,
  vocabSize: 11,
  maxSeqLen: 5,
  normEps: 1e-5,
  ropeTheta: 10000,
  ropeStyle: "interleaved",
  tiedEmbeddings: false,
  attentionBias: false,
});

test("every parameter's analytic gradient matches central finite differences (float64)", () => {
  const B = 2;
  const T = 5;
  const params = initParams(config, float64Compute, 7);
  // Larger weights than the 0.02 init, and norm weights away from 1, so every path carries real signal.
  const rng = new Rng(3);
  for (const p of params.values()) {
    for (let i = 0; i < p.value.length; i++)
      p.value[i] =
        (rng.nextUint32() / 2 ** 32 - 0.5) * (p.shape.length === 1 ? 1 : 0.8) +
        (p.shape.length === 1 ? 1 : 0);
  }
  const graph = new LlamaGraph(config, params, float64Compute, B, T);
  const inputs = Int32Array.from({ length: B * T }, (_, i) => (i * 7 + 3) % config.vocabSize);
  const targets = Int32Array.from({ length: B * T }, (_, i) => (i * 5 + 1) % config.vocabSize);
  targets[4] = -1; // an ignored target must not contribute
  graph.forward(inputs, targets);
  graph.backward();

  const h = 1e-5;
  const lossAt = () => graph.forward(inputs, targets).loss;
  for (const p of params.values()) {
    const picks = [0, Math.floor(p.value.length / 2), p.value.length - 1, (p.value.length * 3) >> 2];
    for (const i of picks) {
      const saved = p.value[i];
      p.value[i] = saved + h;
      const plus = lossAt();
      p.value[i] = saved - h;
      const minus = lossAt();
      p.value[i] = saved;
      const numeric = (plus - minus) / (2 * h);
      // Central differences err by O(h²) ≈ 1e-10 here; float64 rounding adds ~1e-11 / h ≈ 1e-6 of slack.
      expect(
        Math.abs(p.grad[i] - numeric),
        `${p.name}[${i}]: analytic ${p.grad[i]} numeric ${numeric}`,
      ).toBeLessThan(1e-7 + 1e-6 * Math.abs(numeric));
    }
  }
});
