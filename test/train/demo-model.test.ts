import fc from "fast-check";
import { getLlama, type Llama, LlamaLogLevel, type Token } from "node-llama-cpp";
import { afterAll, beforeAll, expect, test } from "vitest";
import { ReferenceBackend } from "../../src/backend/reference/reference-backend.js";
import { bundledModelPath } from "../../src/cli/default-model.js";
import { dequantize } from "../../src/model/dtype.js";
import { loadModel } from "../../src/model/load.js";
import { nativeCompute } from "../../src/train/compute.js";
import { LlamaGraph } from "../../src/train/llama-graph.js";
import { paramsFromValues } from "../../src/train/params.js";
import { greedyIds, logitsAt } from "../helpers.js";

// The model vellum trains itself (models/kjv-demo, see its MODEL_CARD.md): committed, so these run anywhere.
const model = loadModel(bundledModelPath);
const prompts = [
  "And God said",
  "In the beginning",
  "The LORD is my shepherd",
  "Blessed are the poor in spirit",
];

let llama: Llama;
beforeAll(async () => {
  llama = await getLlama({ gpu: false, build: "never", logLevel: LlamaLogLevel.error });
});
afterAll(async () => {
  await llama?.dispose();
});

test("the bundled model is a small f16 llama GGUF", () => {
  expect(model.config.architecture).toBe("llama");
  expect(model.tensors.get("blk.0.attn_q.weight")?.dtype).toBe("f16");
  expect(model.tokenizer.vocabSize).toBe(model.config.vocabSize);
});

test("the training forward pass gives the reference backend's loss on a batch (|Δ| < 1e-5 nats/token; measured 8e-8)", async () => {
  const text =
    "And it came to pass, when men began to multiply on the face of the earth, and daughters were born unto them, " +
    "That the sons of God saw the daughters of men that they were fair; and they took them wives of all which they chose.";
  const ids = model.tokenizer.encode(text);
  const T = ids.length - 1;
  const inputs = Int32Array.from(ids.slice(0, T));
  const targets = Int32Array.from(ids.slice(1));

  const compute = nativeCompute(1);
  const params = paramsFromValues(model.config, compute, (name) =>
    dequantize(model.tensors.get(name) ?? fail(name)),
  );
  const training = new LlamaGraph(model.config, params, compute, 1, T).forward(inputs, targets).loss;

  const logits = await logitsAt(new ReferenceBackend(model), [...inputs], model.config.vocabSize);
  let nats = 0;
  for (let t = 0; t < T; t++) {
    const row = logits[t];
    const max = row.reduce((a, b) => Math.max(a, b), -Infinity);
    const sum = row.reduce((a, b) => a + Math.exp(b - max), 0);
    nats += Math.log(sum) + max - row[targets[t]];
  }
  const reference = nats / T;
  expect(training).toBeLessThan(4); // a trained model, not a uniform guess (ln 2048 ≈ 7.6)
  expect(Math.abs(training - reference), `training ${training}, reference ${reference}`).toBeLessThan(1e-5);
});

test("llama.cpp tokenizes like vellum and continues greedily with the same tokens", async () => {
  const llamaModel = await llama.loadModel({ modelPath: bundledModelPath });
  try {
    for (const text of [...prompts, "naïve café ☕ 日本語 🙂", "Selah.\n\tAmen!  (42)"]) {
      // llama.cpp's tokenize() leaves out the BOS that vellum's encode() adds.
      expect(model.tokenizer.encode(text).slice(1), text).toEqual([...llamaModel.tokenize(text)]);
    }
    for (const prompt of prompts) {
      const promptIds = model.tokenizer.encode(prompt);
      const ours = await greedyIds(
        new ReferenceBackend(model),
        promptIds,
        32,
        model.tokenizer.stopIds,
        model.config.maxSeqLen,
      );
      const context = await llamaModel.createContext({ contextSize: model.config.maxSeqLen, threads: 1 });
      const theirs: number[] = [];
      try {
        for await (const token of context.getSequence().evaluate(promptIds as Token[], { temperature: 0 })) {
          if (model.tokenizer.stopIds.includes(token)) break;
          theirs.push(token);
          if (theirs.length >= 32) break;
        }
      } finally {
        await context.dispose();
      }
      expect(theirs, prompt).toEqual(ours);
    }
  } finally {
    await llamaModel.dispose();
  }
});

test("the tokenizer round-trips arbitrary UTF-8 (byte fallback for what it has no piece for)", () => {
  // Any text but the control tokens' own spellings, which encode as those tokens (decode drops them), and
  // U+2581 "▁": SentencePiece spells spaces so, and a literal one decodes as a space (so do llama.cpp and HF).
  const anyText = fc.string({ unit: "grapheme" }).filter((s) => !/<s>|<\/s>|<unk>|\u2581/.test(s));
  fc.assert(
    fc.property(anyText, (s) => {
      expect(model.tokenizer.decode(model.tokenizer.encode(s))).toBe(s);
    }),
    { numRuns: 300 },
  );
});

function fail(name: string): never {
  throw new Error(`the bundled model has no tensor ${name}`);
}
