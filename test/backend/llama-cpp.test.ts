import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { getLlama, type Llama, LlamaLogLevel, type Token } from "node-llama-cpp";
import { afterAll, beforeAll, expect, test } from "vitest";
import { ReferenceBackend } from "../../src/backend/reference/reference-backend.js";
import { writeGgufModel } from "../../src/model/formats/gguf-model.js";
import { loadModel } from "../../src/model/load.js";
import { syntheticModel } from "../../src/model/synth/synth-model.js";
import { greedyIds } from "../helpers.js";
import { describeShared, needs, stories260K } from "../shared-models.js";

// llama.cpp, through node-llama-cpp's prebuilt binary, is the independent implementation vellum must agree with.
// One thread: on 2 cores its spinning workers and Node's own thread otherwise fight (see DESIGN.md).
const prompts = ["Once upon a time", "Lily and Tom went to the park", "The cat sat on the mat. It was happy"];

let llama: Llama;
let dir: string;
beforeAll(async () => {
  llama = await getLlama({ gpu: false, build: "never", logLevel: LlamaLogLevel.error });
  dir = mkdtempSync(join(tmpdir(), "vellum-llama-cpp-"));
});
afterAll(async () => {
  await llama?.dispose();
  rmSync(dir, { recursive: true, force: true });
});

/** llama.cpp's greedy continuation of exactly these prompt ids. */
async function llamaCppGreedy(modelPath: string, promptIds: number[], maxTokens: number): Promise<number[]> {
  const model = await llama.loadModel({ modelPath });
  const context = await model.createContext({ contextSize: 512, threads: 1 });
  const out: number[] = [];
  try {
    for await (const token of context.getSequence().evaluate(promptIds as Token[], { temperature: 0 })) {
      if (model.tokens.bos === token || model.tokens.eos === token) break;
      out.push(token);
      if (out.length >= maxTokens) break;
    }
  } finally {
    await context.dispose();
    await model.dispose();
  }
  return out;
}

describeShared("llama.cpp agrees with vellum on stories260K", needs.stories260K, () => {
  test("converted GGUF: same tokenization and same greedy ids", async () => {
    const path = join(dir, "stories260K-f32.gguf");
    writeGgufModel(loadModel(stories260K.model, { tokenizer: stories260K.tokenizer }), path, {
      dtype: "f32",
    });
    const vellum = loadModel(path);
    const llamaModel = await llama.loadModel({ modelPath: path });
    const theirs = prompts.map((p) => [...llamaModel.tokenize(p)]);
    await llamaModel.dispose();
    for (const [i, prompt] of prompts.entries()) {
      const promptIds = vellum.tokenizer.encode(prompt);
      expect(promptIds.slice(1), prompt).toEqual(theirs[i]); // llama.cpp's tokenize() leaves out BOS
      const ours = await greedyIds(
        new ReferenceBackend(vellum),
        promptIds,
        48,
        vellum.tokenizer.stopIds,
        512,
      );
      expect(await llamaCppGreedy(path, promptIds, 48), prompt).toEqual(ours);
    }
  });
});

test("llama.cpp loads a synth-model GGUF and tokenizes its vocabulary as vellum does", async () => {
  const path = join(dir, "tiny-test-q8_0.gguf");
  writeGgufModel(syntheticModel("tiny-test", "q8_0"), path, { dtype: "q8_0" });
  const vellum = loadModel(path);
  const llamaModel = await llama.loadModel({ modelPath: path });
  try {
    expect(llamaModel.fileInfo.metadata.general.architecture).toBe("llama");
    for (const text of ["hello world", "Quick brown fox, 42!", "naïve café ☕"]) {
      expect(vellum.tokenizer.encode(text).slice(1), text).toEqual([...llamaModel.tokenize(text)]);
    }
  } finally {
    await llamaModel.dispose();
  }
});
